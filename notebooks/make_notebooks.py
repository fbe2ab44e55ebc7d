"""Writes the shipped notebooks (clean: no outputs, cell ids). Run after editing a notebook's cells here:

    python notebooks/make_notebooks.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

NOTEBOOKS = {
    "audio_spoken_digits": [
        new_markdown_cell(
            "# Spoken digits: a conditional WaveGAN, listened to and looked at\n\n"
            "Trains `configs/cwavegan_spoken_digits.yaml` on the embedded `spoken_digits` clips (\"zero\" to "
            "\"nine\" by espeak-ng: synthetic speech rendered on this machine, GPL-3.0, from the `audio` extra) "
            "with `model.fit`, plays samples inline, shows their spectrograms beside real clips, scores them "
            "with the project's audio classifier and exports a SavedModel that returns waveforms. The model code "
            "lives in `aigc_tf/audio/`. Runs and exports go to the notebook's own directories; "
            "`AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings (the test suite runs it that way)."
        ),
        new_code_cell(
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# 2 of the config's 10 epochs (about 6 minutes on 2 CPU cores).\n"
            "session = NotebookRun(\n"
            "    \"cwavegan_spoken_digits\",\n"
            "    full=[\"train.epochs=2\", \"train.quality_every=0\"],\n"
            "    small=[\"train.epochs=1\", \"data.voices=40\", \"data.sample_rate=4000\", \"data.clip_length=1024\",\n"
            "           \"model.model_dim=4\", \"model.num_layers=3\", \"model.d_steps=2\", \"train.quality_every=0\"],\n"
            ")\n"
            "model = session.train()"
        ),
        new_code_cell(
            "from IPython.display import Audio, display\n\n"
            "from aigc_tf.audio.task import generate_clips\n\n"
            "# Ask the conditional generator for \"seven\" (class 7) three times, then one of each digit.\n"
            "sevens, _ = generate_clips(model, 3, seed=0, labels=[7, 7, 7])\n"
            "for clip in sevens:\n"
            "    display(Audio(clip, rate=model.sample_rate))"
        ),
        new_code_cell(
            "from IPython.display import Image\n\n"
            "from aigc_tf.audio.data import load_clips\n"
            "from aigc_tf.audio.outputs import spectrogram_grid\n\n"
            "digits, labels = generate_clips(model, 8, seed=1)\n"
            "real, names, _ = load_clips(session.config.data, \"test\")\n"
            "panel = session.run_dir / \"nb_spectrograms.png\"\n"
            "spectrogram_grid(list(digits) + list(real.audio[:8]), model.sample_rate, panel,\n"
            "                 titles=[f\"generated {names[y]}\" for y in labels] + [f\"real {names[y]}\" for y in real.labels[:8]])\n"
            "Image(filename=str(panel))"
        ),
        new_code_cell(
            "from aigc_tf.evaluate import evaluate_run\n\n"
            "m = evaluate_run(session.run_dir)\n"
            "{k: m[k] for k in (\"classifier_accuracy\", \"inception_score\", \"inception_score_real\", \"fd\",\n"
            "                   \"fd_real_vs_real\", \"fd_noise\", \"class_accuracy\")}"
        ),
        new_code_cell(
            "import numpy as np\n"
            "import tensorflow as tf\n\n"
            "path = session.export(model)\n"
            "serve = tf.saved_model.load(str(path)).signatures[\"serving_default\"]\n"
            "out = serve(z=model.sample_latent(2, seed=0), labels=tf.constant([3, 9], tf.int32))\n"
            "{k: (v.dtype.name, tuple(v.shape)) for k, v in out.items()}"
        ),
    ],
    "dcgan_digits": [
        new_markdown_cell(
            "# DCGAN on the embedded `digits` dataset\n\n"
            "Drives the library with the shipped config `configs/dcgan_digits.yaml`; no model code lives here. "
            "It trains into the notebook's own run directory (re-running reuses a finished run), shows the "
            "samples and training curves inline, and exports a SavedModel into the notebook's own export root "
            "(never one TF Serving reads from). `AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings (the test "
            "suite runs it that way)."
        ),
        new_code_cell(
            "from aigc_tf import viz\n"
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# 10 of the config's 100 epochs (about a minute on 2 CPU cores).\n"
            "session = NotebookRun(\n"
            "    \"dcgan_digits\",\n"
            "    full=[\"train.epochs=10\", \"train.quality_every=5\"],\n"
            "    small=[\"train.epochs=1\", \"data.max_examples=128\", \"train.quality_every=0\", \"model.base_filters=8\"],\n"
            ")\n"
            "session"
        ),
        new_code_cell("model = session.train()"),
        new_code_cell(
            "import matplotlib.pyplot as plt\n\n"
            "from aigc_tf.tasks.image import sample_images\n\n"
            "images = sample_images(model, 64, seed=0)\n"
            "fig, ax = plt.subplots(figsize=(5, 5))\n"
            "ax.imshow(viz.image_grid(images)[..., 0], cmap=\"gray\")\n"
            "ax.axis(\"off\")\n"
            "plt.show()"
        ),
        new_code_cell(
            "from IPython.display import Image\n\n"
            "Image(filename=str(session.run_dir / \"history.png\"))"
        ),
        new_code_cell(
            "path = session.export(model)\n"
            "print(path)"
        ),
    ],
    "gpt_embedded": [
        new_markdown_cell(
            "# GPT on the embedded corpus\n\n"
            "Drives the library only: config -> training -> sampling -> evaluation -> export. The model code "
            "lives in `aigc_tf/models/gpt.py`. The run and the export go to the notebook's own directories; "
            "re-running reuses a finished run. `AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings."
        ),
        new_code_cell(
            "from aigc_tf.evaluate import evaluate_run\n"
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# 3 of the config's 22 epochs for a quick look (about 90 s on 2 CPU cores; all 22 take about 11 minutes).\n"
            "session = NotebookRun(\n"
            "    \"gpt_embedded\",\n"
            "    full=[\"train.epochs=3\"],\n"
            "    small=[\"train.epochs=1\", \"train.steps_per_epoch=5\", \"model.num_layers=1\", \"model.embed_dim=32\",\n"
            "           \"train.lr_schedule=constant\", \"train.warmup_steps=0\", \"train.num_samples=1\"],\n"
            ")\n"
            "gpt = session.train()"
        ),
        new_code_cell(
            "# No max_new_tokens: as many as the 128-token context leaves after the prompt.\n"
            "prompt = \"The \"\n"
            "max_new = gpt.new_token_budget(int(gpt.tokenize([prompt])[1][0]))\n"
            "from aigc_tf.tasks.text import sample_texts\n\n"
            "for text in sample_texts(gpt, prompt, num_samples=3, max_new_tokens=max_new, temperature=0.8,\n"
            "                         seed=0, top_p=0.95):\n"
            "    print(gpt.join(prompt, text), end=\"\\n\\n\")"
        ),
        new_code_cell(
            "ids, lengths = gpt.tokenize([\"A class \"])\n"
            "tokens, score = gpt.beam_search_ids(ids, lengths, 40, beam_width=4)\n"
            "print(gpt.detokenize(tokens).numpy()[0].decode(), float(score[0]))"
        ),
        new_code_cell(
            "result = evaluate_run(session.run_dir, n_samples=20)\n"
            "{k: result[k] for k in (\"val_perplexity_sliding\", \"ngram_val_perplexity\", \"distinct_1\", \"distinct_2\")}"
        ),
        new_code_cell(
            "import tensorflow as tf\n\n"
            "path = session.export(gpt)\n"
            "serve = tf.saved_model.load(str(path)).signatures[\"serving_default\"]\n"
            "# max_new_tokens 0 = the default (what the context leaves).\n"
            "serve(prompts=tf.constant([\"The \"]), max_new_tokens=tf.constant([0]), temperature=tf.constant([0.8]),\n"
            "      top_k=tf.constant([0]), top_p=tf.constant([0.95]), seed=tf.constant([0]))[\"texts\"]"
        ),
    ],
    "tabular": [
        new_markdown_cell(
            "# Tables: a learned synthesizer and records from rules\n\n"
            "TVAE trained on the embedded `fair` table (`configs/tvae_fair.yaml`; the table ships inside "
            "statsmodels), the source documents' rule-based user records (`configs/users_rules.yaml`, no "
            "model), then the TVAE's marginals against the real hold-out rows, its scores beside the two baselines, "
            "conditional sampling and a SavedModel. Runs and files go to the notebook's own directories; "
            "`AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings."
        ),
        new_code_cell(
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# All 300 epochs of the config take about 2 minutes on 2 CPU cores.\n"
            "session = NotebookRun(\n"
            "    \"tvae_fair\",\n"
            "    small=[\"train.epochs=2\", \"data.max_examples=500\", \"model.hidden=[16]\", \"model.latent_dim=8\",\n"
            "           \"train.quality_every=0\"],\n"
            ")\n"
            "tvae = session.train()"
        ),
        new_code_cell(
            "import pyarrow.csv\n\n"
            "from aigc_tf.notebook import shipped_config\n"
            "from aigc_tf.tabular import rules\n\n"
            "schema = rules.load_schema(shipped_config(\"users_rules\"))\n"
            "users = session.run_dir / \"users.csv\"  # beside the run, in the notebook's own directory\n"
            "result = rules.write_records(schema, 100_000, users, seed=0, overwrite=True, progress=False)\n"
            "print(f\"{result['rows']:,} rows in {result['seconds']:.2f} s\")\n"
            "pyarrow.csv.read_csv(users).slice(0, 5).to_pandas()"
        ),
        new_code_cell(
            "from IPython.display import Image\n\n"
            "from aigc_tf.tabular.plots import plot_marginals\n"
            "from aigc_tf.tabular.task import generate_table\n"
            "from aigc_tf.training import task_of\n\n"
            "train, holdout, info = task_of(session.config).tables(session.config)\n"
            "synthetic = generate_table(tvae, train.num_rows, seed=0)\n"
            "Image(filename=str(plot_marginals(holdout, {\"tvae\": synthetic}, session.run_dir / \"nb_marginals.png\",\n"
            "                                  list(info.discrete))))"
        ),
        new_code_cell(
            "from aigc_tf.evaluate import evaluate_run\n"
            "from aigc_tf.tabular.scoring import format_rows\n\n"
            "result = evaluate_run(session.run_dir)\n"
            "print(format_rows(result[\"results\"]))"
        ),
        new_code_cell(
            "import pyarrow as pa\n\n"
            "from aigc_tf.tabular.task import generate_tables, where_codes\n\n"
            "# Only rows with occupation 5 (kept by rejection; a CTGAN is also conditioned on it).\n"
            "pa.concat_tables(generate_tables(tvae, 5, seed=1, conditions=where_codes(tvae, [(\"occupation\", \"5\")])))"
            ".to_pandas()"
        ),
        new_code_cell(
            "import tensorflow as tf\n\n"
            "path = session.export(tvae)\n"
            "serve = tf.saved_model.load(str(path)).signatures[\"serving_default\"]\n"
            "{k: v.numpy()[:3] for k, v in serve(rows=tf.constant(3), seed=tf.constant(0, tf.int64)).items()}"
        ),
    ],
}


def write_all() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        nb.metadata["language_info"] = {"name": "python"}
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name.replace('_', '-')}-{i}"  # stable ids: no diff noise on rewrite
        nbformat.validate(nb)
        nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    write_all()
