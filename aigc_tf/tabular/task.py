"""Table families: ``tvae`` (family ``table_vae``) and ``ctgan`` (family ``table_gan``).

Data: a table (:mod:`aigc_tf.tabular.data`: the embedded ``fair`` or a
CSV / Parquet file), split once into train and hold-out rows with
``data.split_seed``; the column transform is fitted on the train rows and
stored in the model. Per-epoch samples: ``samples/epoch_NNNN.csv``. Quality
every ``train.quality_every`` epochs: SDMetrics' overall quality score of
``train.quality_samples`` generated rows against the hold-out rows.
``aigc-tf evaluate``: every score of :mod:`aigc_tf.tabular.scoring` for the
model, the real train rows and the two baselines, and a marginals plot.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from aigc_tf.config import DataConfig
from aigc_tf.errors import ConfigError, DataError, UserError
from aigc_tf.tasks.base import Task, compile_adam, positive

GENERATE_BLOCKS = 64  # blocks of rows generated per call when sampling


@dataclasses.dataclass
class TableDataConfig(DataConfig):
    """``data:`` keys of table models."""

    name: str = "fair"  # an embedded table, or "file" with data.path (.csv / .parquet)
    batch_size: int = 500
    discrete: list[str] | None = None  # numeric columns that are categories (null: the dataset's own list)
    target: str | None = None  # efficacy target: a column or a row expression (null: the dataset's own)
    constraints: list[str] | None = None  # row expressions every row should meet (evaluate reports validity)
    test_fraction: float = 0.2  # hold-out rows
    split_seed: int = 0  # the train / hold-out split (fixed, whatever the run's seed)
    max_modes: int = 10  # mixture components per continuous column
    snap_distinct: int = 100  # continuous columns with at most this many distinct values: snap output to them (0: off)
    point_mass: float = 0.0  # a continuous value holding at least this share of rows: a zero-width mode (0: off)


@dataclasses.dataclass
class TableData:
    """What :meth:`TableTask.load_data` returns: pipelines, tables and the fitted transform."""

    train: object  # tf.data.Dataset
    test: object  # tf.data.Dataset or None
    table: object  # pa.Table: the train rows
    holdout: object  # pa.Table
    info: object  # TableInfo
    transformer: object  # TableTransformer
    matrix: np.ndarray  # the train rows transformed


class TableTask(Task):
    modality = "table"
    data_config = TableDataConfig
    datasets = ("fair", "file")
    sparse_metrics = ("quality",)
    objective = ("quality", "max")

    def check_config(self, cfg, source: str) -> None:
        super().check_config(cfg, source)
        d = cfg.data
        if d.name == "file" and not d.path:
            raise ConfigError(f"{source}: data.name=file needs data.path, a .csv or .parquet table")
        if not 0 < d.test_fraction < 1:
            raise ConfigError(f"{source}: data.test_fraction must be in (0, 1), got {d.test_fraction}")
        if d.max_modes < 1:
            raise ConfigError(f"{source}: data.max_modes must be at least 1, got {d.max_modes}")
        if not 0 <= d.point_mass < 1:
            raise ConfigError(f"{source}: data.point_mass must be in [0, 1) (a share of the rows; 0: off), "
                              f"got {d.point_mass}")
        if cfg.train.lr_schedule != "constant" or cfg.train.clipnorm is not None:
            raise ConfigError(f"{source}: train.lr_schedule and train.clipnorm apply to text models; "
                              f"{cfg.model['name']!r} trains with a constant learning rate and no clipping")
        from aigc_tf.tabular.expressions import Expression, ExpressionError

        for text in [*(d.constraints or []), *([d.target] if d.target else [])]:
            try:
                Expression(text)
            except ExpressionError as exc:
                raise ConfigError(f"{source}: data expression {text!r}: {exc}") from None

    # -------------------------------------------------------- data, model
    def tables(self, cfg):
        """``(train rows, hold-out rows, info)`` of the config's table."""
        from aigc_tf.tabular.data import load_table, split_table

        d = cfg.data
        table, info = load_table(d.name, d.path, d.discrete, d.target)
        train, holdout = split_table(table, d.test_fraction, d.split_seed)
        if d.max_examples is not None:
            train = train.slice(0, d.max_examples)
        return train, holdout, info

    def load_data(self, cfg, seed_offset: int = 0, model=None):
        from aigc_tf.tabular.transforms import TableTransformer

        train, holdout, info = self.tables(cfg)
        d = cfg.data
        transformer = model.transformer if model is not None and hasattr(model, "transformer") else \
            TableTransformer(list(info.discrete), d.max_modes, cfg.seed, d.snap_distinct, d.point_mass).fit(train)
        seed = cfg.seed + seed_offset
        matrix = transformer.transform(train, seed=seed)
        return TableData(self.pipeline(cfg, matrix, transformer, seed), self.validation(cfg, holdout, transformer),
                         train, holdout, info, transformer, matrix)

    def pipeline(self, cfg, matrix, transformer, seed):
        from aigc_tf.tabular.batches import row_batches

        return row_batches(matrix, cfg.data.batch_size, seed)

    def validation(self, cfg, holdout, transformer):
        """Batches of the hold-out rows the transform knows (rows with categories unseen in training are left out)."""
        from aigc_tf.tabular.batches import row_batches

        known = np.ones(holdout.num_rows, bool)
        for column in transformer.columns:
            if hasattr(column, "codes"):
                known &= column.codes(holdout.column(column.name)) >= 0
        if not known.any():
            return None
        return row_batches(transformer.transform(holdout.filter(known), seed=0), cfg.data.batch_size, 0,
                           shuffle=False)

    def _build(self, cfg, data):
        from aigc_tf import registry

        try:
            return registry.build_model(cfg.model, cfg.seed, table_transform=data.transformer.get_config())
        except ValueError as exc:
            raise ConfigError(f"model {cfg.model['name']!r} cannot be built for table {data.info.name!r}: {exc}") \
                from None

    def build_model(self, cfg, data):
        return compile_adam(self._build(cfg, data), cfg.train)

    # ------------------------------------------------------------ training
    def write_samples(self, cfg, model, folder: Path, epoch: int) -> None:
        from aigc_tf.tabular.output import TableWriter

        table = generate_table(model, cfg.train.num_samples, cfg.seed)
        with TableWriter(folder / f"epoch_{epoch:04d}.csv", overwrite=True, quote=True) as writer:
            writer.write(writer.encode(table))

    def quality_callback(self, cfg):
        """SDMetrics' overall quality of generated rows against the hold-out rows, every ``train.quality_every`` epochs."""
        if not cfg.train.quality_every:
            return None
        from aigc_tf.tabular.quality import quality_report
        from aigc_tf.tasks.base import quality_every_k_epochs

        _, holdout, info = self.tables(cfg)

        def overall(model):
            rows = generate_table(model, cfg.train.quality_samples, cfg.seed)
            return quality_report(holdout, rows, list(info.discrete))["overall"]

        return quality_every_k_epochs(cfg, "quality", overall)

    # ---------------------------------------------------- after training
    def evaluate(self, run_dir: Path, cfg, model, n_samples: int | None, seed: int, **options) -> dict:
        import time

        from aigc_tf.tabular import plots, scoring

        train, holdout, info = self.tables(cfg)
        n = n_samples or train.num_rows
        constraints = cfg.data.constraints or []
        began = time.perf_counter()
        rows = generate_table(model, n, seed)
        seconds = time.perf_counter() - began
        results = [scoring.score(cfg.model["name"], rows, train, holdout, info, constraints, seed, seconds)]
        references = scoring.reference_rows(train, info, n, seed)
        for name, (table, took) in references.items():
            results.append(scoring.score(name, table, train, holdout, info, constraints, seed, took))
        plots.plot_marginals(holdout, {cfg.model["name"]: rows, "Gaussian copula": references["Gaussian copula"][0]},
                             Path(run_dir) / "marginals.png", list(info.discrete))
        if options.get("verbose"):
            print(scoring.format_rows(results))
        ours, real, independent, copula = results
        out = {"run_dir": str(run_dir), "model": cfg.model["name"], "dataset": info.name,
               "train_rows": train.num_rows, "holdout_rows": holdout.num_rows, "num_samples": n, "seed": seed,
               "target": info.target, "quality": ours["overall"], "column_shapes": ours["column_shapes"],
               "column_pair_trends": ours["column_pair_trends"], "quality_real_vs_real": real["overall"],
               "quality_independent": independent["overall"], "quality_copula": copula["overall"],
               "dcr_ratio": ours["privacy"]["dcr_ratio"], "copies": ours["privacy"]["copies"]}
        if info.target:
            metric = "accuracy" if ours["efficacy"]["task"] == "classification" else "r2"
            out.update({f"efficacy_{metric}": ours["efficacy"][metric],
                        f"efficacy_{metric}_real": real["efficacy"][metric],
                        f"efficacy_{metric}_copula": copula["efficacy"][metric]})
        if constraints:
            out["validity"] = ours["validity"]["all"]
            out["validity_real"] = real["validity"]["all"]
        out["marginals_plot"] = str(Path(run_dir) / "marginals.png")
        out["results"] = results
        return out

    def export_endpoints(self, model) -> dict:
        import tensorflow as tf

        from aigc_tf.tabular.graph_columns import output_columns

        def serving_default(rows, seed):
            matrix = model.generate(rows, seed)
            return output_columns(model.transformer, matrix)

        return {"serving_default": (serving_default, [tf.TensorSpec([], tf.int32, name="rows"),
                                                      tf.TensorSpec([], tf.int64, name="seed")])}

    # ----------------------------------------------------------------- cli
    @classmethod
    def add_sample_arguments(cls, parser) -> None:
        parser.add_argument("--rows", type=positive, help="table: rows to write (default 1000; -n also works)")
        parser.add_argument("--where", action="append", metavar="COLUMN=VALUE",
                            help="table: only rows with this value (repeatable); a ctgan run is also conditioned "
                                 "on it")
        parser.add_argument("--overwrite", action="store_true", help="table: replace --out if it exists")

    def _sample_out(self, args, cfg, run_dir: Path, rows: int) -> Path:
        seed = cfg.seed if args.seed is None else args.seed
        return Path(args.out) if args.out else run_dir / "samples" / f"sample_seed{seed}_rows{rows}.csv"

    def check_sample_arguments(self, args, cfg, run_dir: Path) -> None:
        from aigc_tf.tabular.output import output_format

        rows = args.rows or args.n or 1000
        out = self._sample_out(args, cfg, run_dir, rows)
        output_format(out)
        if out.exists() and not args.overwrite:
            raise UserError(f"--out {out} exists and is kept; pass --overwrite to replace it or choose another file")
        parse_where(args.where or [])

    def sample(self, args, cfg, run_dir: Path, model) -> int:
        from aigc_tf.tabular.output import TableWriter

        seed = cfg.seed if args.seed is None else args.seed
        rows = args.rows or args.n or 1000
        out = self._sample_out(args, cfg, run_dir, rows)
        out.parent.mkdir(parents=True, exist_ok=True)
        conditions = where_codes(model, parse_where(args.where or []))
        with TableWriter(out, overwrite=args.overwrite, quote=True) as writer:
            for table in generate_tables(model, rows, seed, conditions):
                writer.write(writer.encode(table))
        where = f" where {' and '.join(args.where)}" if args.where else ""
        print(f"Wrote {rows} rows{where} (seed {seed}) to {out}")
        return 0


class TableVAETask(TableTask):
    family = "table_vae"


class TableGANTask(TableTask):
    family = "table_gan"

    def check_config(self, cfg, source: str) -> None:
        super().check_config(cfg, source)
        from aigc_tf import registry

        pac = cfg.model.get("pac", registry.model_arguments(cfg.model["name"])["pac"][1])
        if cfg.data.batch_size % pac:
            raise ConfigError(f"{source}: data.batch_size={cfg.data.batch_size} must be a multiple of model.pac={pac} "
                              f"(the critic judges packs of {pac} rows)")

    def pipeline(self, cfg, matrix, transformer, seed):
        from aigc_tf.tabular.batches import conditional_batches

        steps = max(1, len(matrix) // cfg.data.batch_size)
        return conditional_batches(matrix, transformer.spans, cfg.data.batch_size, seed, steps)

    def validation(self, cfg, holdout, transformer):
        return None  # a critic's loss on held-out rows says little; the quality callback measures the rows


# ------------------------------------------------------------------ generation
def parse_where(items: list[str]) -> list[tuple[str, str]]:
    """``["city=Beijing"]`` -> ``[("city", "Beijing")]``."""
    out = []
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or not column.strip():
            raise UserError(f"--where {item!r}: expected COLUMN=VALUE, e.g. --where occupation=3")
        out.append((column.strip(), value.strip()))
    return out


def where_codes(model, conditions: list[tuple[str, str]]) -> list[tuple[str, int, int | None]]:
    """Each condition as ``(column, category index, index in the condition vector or None)``.

    Only discrete columns can be conditioned on; the value is matched against
    the column's categories as text (``3`` matches the category 3)."""
    columns = {c.name: c for c in model.transformer.columns}
    offsets, start = {}, 0
    for span in model.categories:
        offsets[span.column] = start
        start += span.width
    out = []
    for name, value in conditions:
        column = columns.get(name)
        if column is None:
            raise UserError(f"--where {name}={value}: no column {name!r}; columns: {', '.join(columns)}")
        if not hasattr(column, "categories"):
            raise UserError(f"--where {name}={value}: {name!r} is continuous; --where takes discrete columns "
                            f"({', '.join(s.column for s in model.categories) or 'none in this table'})")
        texts = ["" if c is None else _text(c) for c in column.categories]
        if value not in texts:
            raise UserError(f"--where {name}={value}: {value!r} is not a category of {name!r}; "
                            f"it has: {', '.join(texts[:20])}{' ...' if len(texts) > 20 else ''}")
        k = texts.index(value)
        out.append((name, k, offsets[name] + k if model.cond_width else None))
    return out


def _text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def generate_table(model, rows: int, seed: int):
    """``rows`` generated rows as one Arrow table."""
    import pyarrow as pa

    return pa.concat_tables(list(generate_tables(model, rows, seed)))


def generate_tables(model, rows: int, seed: int, conditions=(), max_draws: int = 100):
    """Generated rows as Arrow tables, chunk by chunk, ``rows`` in all.

    With ``conditions`` (:func:`where_codes`), a CTGAN is conditioned on the
    first one and every condition is then enforced by keeping only the rows
    that meet it, drawing further blocks until there are enough; after
    ``max_draws`` times as many rows as asked for it stops with an error."""
    from aigc_tf.tabular.models import BLOCK

    block = GENERATE_BLOCKS
    first, done, drawn = 0, 0, 0
    cond_index = next((c[2] for c in conditions if c[2] is not None), None)
    while done < rows:
        count = block if conditions else min(block, -(-(rows - done) // BLOCK))
        matrix = model.generate_blocks(seed, first, count, cond_index).numpy()
        first += count
        drawn += len(matrix)
        if conditions:
            keep = np.ones(len(matrix), bool)
            for name, k, _ in conditions:
                span = next(s for s in model.spans if s.column == name and s.role == "category")
                keep &= matrix[:, span.start:span.start + span.width].argmax(axis=1) == k
            matrix = matrix[keep]
        matrix = matrix[: rows - done]
        if len(matrix):
            done += len(matrix)
            yield model.table_from_matrix(matrix)
        if conditions and drawn >= max_draws * rows and done < rows:
            raise DataError(f"only {done} of {rows} rows met the --where conditions in {drawn} generated rows; "
                            f"the model rarely produces them: ask for fewer rows or fewer conditions")
