"""Writes the shipped notebooks (clean: no outputs, cell ids). Run after editing a notebook's cells here:

    python notebooks/make_notebooks.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

NOTEBOOKS = {
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
