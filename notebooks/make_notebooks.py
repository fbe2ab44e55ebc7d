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
    "gpt2_embedded": [
        new_markdown_cell(
            "# GPT-2 through KerasHub\n\n"
            "Trains `configs/gpt2_embedded.yaml` with `model.fit`: KerasHub's `GPT2Backbone` with a byte-level BPE "
            "trained offline on the embedded corpus (no preset, no download; the `gpt2` extra). Then samples with "
            "our samplers, the backbone's key/value cache and a batched prefill (sequences end at "
            "`<|endoftext|>`), and exports a string-in / string-out SavedModel. The model code lives in "
            "`aigc_tf/models/gpt2.py`. `AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings.\n\n"
            "With pretrained weights, point `model.preset` at a KerasHub preset folder or a Hugging Face GPT-2 "
            "checkpoint folder (`config.json`, `model.safetensors`, `vocab.json`, `merges.txt`), and set "
            "`model.lora_rank` to fine-tune only LoRA adapters on a CPU: see `configs/gpt2_finetune_imdb.yaml`."
        ),
        new_code_cell(
            "from aigc_tf.evaluate import evaluate_run\n"
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# 2 of the config's 30 epochs for a quick look; the BPE is trained first (seconds).\n"
            "session = NotebookRun(\n"
            "    \"gpt2_embedded\",\n"
            "    full=[\"train.epochs=2\"],\n"
            "    small=[\"train.epochs=1\", \"train.steps_per_epoch=3\", \"model.num_layers=1\", \"model.hidden_dim=32\",\n"
            "           \"model.intermediate_dim=64\", \"data.vocab_size=300\", \"data.max_examples=200\",\n"
            "           \"train.lr_schedule=constant\", \"train.warmup_steps=0\", \"train.num_samples=1\"],\n"
            ")\n"
            "gpt2 = session.train()\n"
            "print(f\"{gpt2.count_params():,} weights, vocabulary {gpt2.vocab_size}, end of text id {gpt2.end_token_id}\")"
        ),
        new_code_cell(
            "from aigc_tf.tasks.text import sample_texts\n\n"
            "prompt = \"The \"\n"
            "for text in sample_texts(gpt2, prompt, num_samples=3, max_new_tokens=40, temperature=0.8, seed=0, top_p=0.95):\n"
            "    print(repr(gpt2.join(prompt, text)))"
        ),
        new_code_cell(
            "scores = evaluate_run(session.run_dir)\n"
            "{k: scores[k] for k in (\"val_perplexity\", \"tuned_ngram_val_perplexity\", \"baselines\") if k in scores}"
        ),
        new_code_cell(
            "# The SavedModel tokenises in the graph with KerasHub's BPE, which uses TF Text ops:\n"
            "# a serving process imports tensorflow_text before loading it.\n"
            "import tensorflow as tf\n"
            "import tensorflow_text  # noqa: F401\n\n"
            "path = session.export(gpt2)\n"
            "serve = tf.saved_model.load(str(path)).signatures[\"serving_default\"]\n"
            "sorted(serve.structured_input_signature[1])"
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
            "# 3 of the config's 22 epochs for a quick look (about 2 min on 2 CPU cores; all 22 take 13-16 minutes).\n"
            "session = NotebookRun(\n"
            "    \"gpt_embedded\",\n"
            "    full=[\"train.epochs=3\"],\n"
            "    small=[\"train.epochs=1\", \"train.steps_per_epoch=5\", \"model.num_layers=1\", \"model.embed_dim=32\",\n"
            "           \"train.lr_schedule=constant\", \"train.warmup_steps=0\", \"train.num_samples=1\"],\n"
            ")\n"
            "gpt = session.train()"
        ),
        new_code_cell(
            "# No max_new_tokens: as many as the 64-token context leaves after the prompt.\n"
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
    "music_chorales": [
        new_markdown_cell(
            "# Bach chorales: a polyphonic RNN-NADE, looked at and listened to\n\n"
            "Trains `configs/chorale_nade_chorales.yaml` (an LSTM over 88-key quarter-note frames whose NADE "
            "models the notes of each frame jointly) on the Bach chorales bundled with music21, with "
            "`model.fit`; shows generated piano rolls beside real chorales, plays renders inline, reports the "
            "test NLL in nats per frame beside a Markov baseline and the Yang & Lerch statistics, and exports a "
            "SavedModel that continues a primer given as note arrays. The model code lives in "
            "`aigc_tf/music/`. Runs and exports go to the notebook's own directories; "
            "`AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings (the test suite runs it that way)."
        ),
        new_code_cell(
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# 40 of the config's 100 epochs (about 6 minutes on 2 CPU cores; test NLL near 6.9 nats per frame).\n"
            "session = NotebookRun(\n"
            "    \"chorale_nade_chorales\",\n"
            "    full=[\"train.epochs=40\"],\n"
            "    small=[\"train.epochs=1\", \"data.max_examples=8\", \"model.units=16\", \"model.nade_hidden=8\",\n"
            "           \"train.quality_every=0\"],\n"
            ")\n"
            "model = session.train()"
        ),
        new_code_cell(
            "from IPython.display import Image\n\n"
            "from aigc_tf.music.data import load_pieces\n"
            "from aigc_tf.music.outputs import piano_roll_png\n"
            "from aigc_tf.music.task import ChoraleTask, excerpt\n\n"
            "task = ChoraleTask()\n"
            "generated = task.sample_pieces(model, 2, seed=0, bars=4)\n"
            "pieces, _, _ = load_pieces(session.config.data, verbose=False)\n"
            "real = [excerpt(p.notes, 4) for p in pieces[\"test\"][:2]]\n"
            "panel = piano_roll_png(generated + real, session.run_dir / \"nb_piano_rolls.png\",\n"
            "                       titles=[\"generated, seed 0\", \"generated, seed 1\", \"real (test)\", \"real (test)\"])\n"
            "Image(filename=str(panel))"
        ),
        new_code_cell(
            "from IPython.display import Audio, display\n\n"
            "from aigc_tf.music.midi import available_renderer\n"
            "from aigc_tf.music.outputs import write_pieces\n\n"
            "print(\"renderer:\", available_renderer())  # soundfont (midirenderer + TimGM6mb.sf2) or sine\n"
            "for path in write_pieces(session.run_dir / \"nb_pieces\", generated):\n"
            "    display(Audio(filename=str(path.with_suffix(\".wav\"))))"
        ),
        new_code_cell(
            "from aigc_tf.evaluate import evaluate_run\n\n"
            "m = evaluate_run(session.run_dir)\n"
            "{k: m[k] for k in (\"test_nll\", \"baseline_test_nll\", \"beats_baseline\", \"mean_oa\", \"mean_oa_real\")}"
        ),
        new_code_cell(
            "import tensorflow as tf\n\n"
            "path = session.export(model)\n"
            "serve = tf.saved_model.load(str(path)).signatures[\"serving_default\"]\n"
            "# A C major chord held for two beats, continued by 8 frames (two bars), two seeds.\n"
            "out = serve(pitch=tf.constant([[48, 64, 67, 72]] * 2), start=tf.zeros([2, 4]), end=tf.fill([2, 4], 1.0),\n"
            "            velocity=tf.fill([2, 4], 80), num_notes=tf.constant([4, 4]), steps=tf.constant([8, 8]),\n"
            "            temperature=tf.constant([1.0, 1.0]), seed=tf.constant([0, 1]))\n"
            "{k: (v.dtype.name, tuple(v.shape)) for k, v in out.items()}"
        ),
    ],
    "serving": [
        new_markdown_cell(
            "# Serving with TF Serving: export, warmup, requests, replay\n\n"
            "Trains a tiny GPT on the embedded corpus (`configs/gpt_embedded.yaml`, a few steps: the text is not "
            "the point), exports it, and shows what TF Serving receives: the version directory with its warmup "
            "requests, the export root's `models.config`, and REST and gRPC requests built with "
            "`aigc_tf.serving`. **No TF Serving server runs here** (this notebook needs neither Docker nor the "
            "network), so each request is replayed through the loaded SavedModel instead, decoded the way the "
            "server decodes it. To serve an export root for real:\n\n"
            "```bash\n"
            "docker run -p 8501:8501 -p 8500:8500 -v \"$PWD/exports:/models\" tensorflow/serving "
            "--model_config_file=/models/models.config\n"
            "```\n\n"
            "(mount this notebook's export root, printed below, in place of `$PWD/exports`). Runs and exports go "
            "to the notebook's own directories; `AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings."
        ),
        new_code_cell(
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# One epoch (about 30 s on 2 CPU cores); the small settings train 3 steps.\n"
            "session = NotebookRun(\n"
            "    \"gpt_embedded\",\n"
            "    full=[\"train.epochs=1\"],\n"
            "    small=[\"train.epochs=1\", \"train.steps_per_epoch=3\", \"model.num_layers=1\", \"model.embed_dim=32\",\n"
            "           \"train.lr_schedule=constant\", \"train.warmup_steps=0\", \"train.num_samples=1\"],\n"
            ")\n"
            "gpt = session.train()"
        ),
        new_code_cell(
            "from aigc_tf import export\n\n"
            "# EXPORT_ROOT/<name>/<version>/: the SavedModel, plus assets.extra/tf_serving_warmup_requests.\n"
            "path = session.export(gpt)\n"
            "name = path.parent.name\n"
            "print(\"export root (mount it at /models):\", session.export_root)\n"
            "print(path)\n"
            "print(\"\\n\".join(sorted(str(p.relative_to(path)) for p in path.rglob(\"*\") if p.is_file())))\n"
            "# Every model under the root, for --model_config_file; base_path is where the container sees it.\n"
            "print((session.export_root / export.MODELS_CONFIG).read_text())"
        ),
        new_code_cell(
            "import tensorflow as tf\n\n"
            "# One PredictRequest per signature, a batch of 2 built from the signature's input specs.\n"
            "for request in export.read_warmup_requests(path):\n"
            "    shapes = {k: (tf.dtypes.as_dtype(v.dtype).name, [d.size for d in v.tensor_shape.dim])\n"
            "              for k, v in sorted(request.inputs.items())}\n"
            "    print(request.model_spec.name, request.model_spec.signature_name, shapes)\n\n"
            "# What TF Serving does when it loads the version: replay them through the signatures.\n"
            "loaded = tf.saved_model.load(str(path))\n"
            "{sig: {k: (v.dtype.name, v.shape) for k, v in out.items()} for sig, out in export.replay_warmup(path, loaded).items()}"
        ),
        new_code_cell(
            "import json\n\n"
            "from aigc_tf import serving\n\n"
            "# The signature's input and output specs, read from saved_model.pb (a server's REST metadata works too).\n"
            "inputs_spec, outputs_spec = serving.signature_specs(path)\n"
            "inputs = {\"prompts\": [\"The \", \"A class \"], \"max_new_tokens\": [40, 40], \"temperature\": [0.0, 0.8],\n"
            "          \"top_k\": [0, 0], \"top_p\": [1.0, 0.95], \"seed\": [0, 1]}\n"
            "row = serving.row_request(inputs, specs=inputs_spec)\n"
            "print(\"POST\", serving.rest_url(\"localhost\", serving.REST_PORT, name))\n"
            "print(json.dumps(row, indent=1))\n"
            "print(json.dumps(serving.columnar_request(inputs, specs=inputs_spec)))"
        ),
        new_code_cell(
            "request = serving.grpc_request(name, inputs, specs=inputs_spec)\n"
            "print(f\"PredictionService/Predict on localhost:{serving.GRPC_PORT}\")\n"
            "print(request.model_spec, sorted(request.inputs))\n"
            "# With a server: serving.decode_grpc(serving.predict_grpc(\"localhost:8500\", request))"
        ),
        new_code_cell(
            "# Replay both requests through the loaded signature, decoded as the server decodes them.\n"
            "serve = loaded.signatures[\"serving_default\"]\n"
            "texts = {}\n"
            "for label, built in ((\"REST row\", row), (\"gRPC\", request)):\n"
            "    tensors = serving.request_tensors(built, inputs_spec)\n"
            "    out = serve(**{k: tf.constant(v) for k, v in tensors.items()})\n"
            "    texts[label] = [t.decode(\"utf-8\", errors=\"replace\") for t in out[\"texts\"].numpy()]\n"
            "    print(label, texts[label])\n"
            "assert texts[\"REST row\"] == texts[\"gRPC\"]  # the same tensors, the same seeds: the same text"
        ),
    ],
    "tuning": [
        new_markdown_cell(
            "# A hyperparameter search with keras-tuner, from Python\n\n"
            "Searches the learning rate and latent size of the conv VAE of `configs/vae_digits.yaml` with "
            "`keras_tuner.BayesianOptimization` over the family's `HyperModel` (`task.hypermodel(config, space)`), "
            "looks at the trials, and retrains the best values as an ordinary run that samples and exports like any "
            "other. The command line does the same from a config's `tune:` section (`aigc-tf tune "
            "configs/tune/vae_digits.yaml`), with every trial a run directory. The search and the run go to the "
            "notebook's own directories; `AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings."
        ),
        new_code_cell(
            "import keras_tuner as kt\n\n"
            "from aigc_tf import registry\n"
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# Trials of 5 epochs (about 15 s each on 2 CPU cores); the small settings train one epoch on 256 digits.\n"
            "FULL = [\"train.epochs=5\", \"train.quality_every=5\"]\n"
            "SMALL = [\"train.epochs=1\", \"data.max_examples=256\", \"train.quality_every=1\", \"train.num_samples=16\"]\n"
            "base = NotebookRun(\"vae_digits\", full=FULL, small=SMALL)\n"
            "space = {\"train.learning_rate\": {\"float\": [3e-4, 6e-3], \"sampling\": \"log\"},\n"
            "         \"model.latent_dim\": {\"choice\": [8, 16, 32]}}\n"
            "task = registry.task_for(base.config.model[\"name\"])\n"
            "hypermodel = task.hypermodel(base.config, space)\n"
            "print(\"objective:\", task.objective)  # (history key, direction): the VAE's test ELBO, higher is better\n"
            "tuner = kt.BayesianOptimization(hypermodel, objective=kt.Objective(*task.objective),\n"
            "                                max_trials=2 if base.small else 6, num_initial_points=2,\n"
            "                                directory=str(base.search_dir), project_name=\"vae\")\n"
            "tuner.search_space_summary()"
        ),
        new_code_cell(
            "tuner.search()  # a finished search is reloaded, not run again"
        ),
        new_code_cell(
            "import pandas as pd\n\n"
            "trials = [{\"trial\": t.trial_id, **{k: t.hyperparameters.get(k) for k in space}, \"test_elbo\": t.score}\n"
            "          for t in tuner.oracle.trials.values()]\n"
            "pd.DataFrame(trials).sort_values(\"test_elbo\", ascending=False)"
        ),
        new_code_cell(
            "# The best values, retrained as an ordinary run (its own run directory, samples, history, export).\n"
            "best_values = {k: tuner.get_best_hyperparameters(1)[0].get(k) for k in space}\n"
            "overrides = [f\"{k}={v}\" for k, v in best_values.items()]\n"
            "session = NotebookRun(\"vae_digits\", full=FULL + overrides, small=SMALL + overrides)\n"
            "vae = session.train()\n"
            "best_values"
        ),
        new_code_cell(
            "import matplotlib.pyplot as plt\n\n"
            "from aigc_tf import viz\n"
            "from aigc_tf.tasks.image import sample_images\n\n"
            "fig, ax = plt.subplots(figsize=(4, 4))\n"
            "ax.imshow(viz.image_grid(sample_images(vae, 36, seed=0))[..., 0], cmap=\"gray\")\n"
            "ax.axis(\"off\")\n"
            "plt.show()\n"
            "print(session.export(vae))"
        ),
    ],
    "vae_digits": [
        new_markdown_cell(
            "# A convolutional VAE on the embedded `digits`\n\n"
            "Trains `configs/vae_digits.yaml` (dynamically binarised digits, Bernoulli likelihood) with `model.fit`, "
            "then looks at what a VAE gives besides samples: reconstructions, the latent space walked between two "
            "digits, and the test ELBO and importance-weighted bound. The model code lives in "
            "`aigc_tf/models/vae.py`. Runs and exports go to the notebook's own directories; "
            "`AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings."
        ),
        new_code_cell(
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# 10 of the config's 40 epochs (about 20 s on 2 CPU cores).\n"
            "session = NotebookRun(\n"
            "    \"vae_digits\",\n"
            "    full=[\"train.epochs=10\", \"train.quality_every=10\"],\n"
            "    small=[\"train.epochs=1\", \"data.max_examples=256\", \"train.quality_every=0\", \"train.num_samples=16\"],\n"
            ")\n"
            "vae = session.train()"
        ),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "import numpy as np\n\n"
            "from aigc_tf import viz\n"
            "from aigc_tf.tasks.image import data_arrays, sample_images\n\n"
            "real, _ = data_arrays(session.config, \"test\")  # in [0, 1]\n"
            "x = real[:8].astype(\"float32\")\n"
            "recon = vae.reconstruct(x).numpy()  # the decoded posterior mean\n"
            "fig, axes = plt.subplots(1, 3, figsize=(12, 4))\n"
            "for ax, images, title in zip(axes, (x, recon, sample_images(vae, 16, seed=0)),\n"
            "                             (\"test digits\", \"reconstructions\", \"prior samples\"), strict=True):\n"
            "    ax.imshow(viz.image_grid(np.asarray(images))[..., 0], cmap=\"gray\")\n"
            "    ax.set_title(title)\n"
            "    ax.axis(\"off\")\n"
            "plt.show()"
        ),
        new_code_cell(
            "# A straight line in latent space between the posterior means of two test digits.\n"
            "mean, _ = vae.encode(x[:2])\n"
            "steps = np.linspace(0.0, 1.0, 8, dtype=\"float32\")[:, None]\n"
            "path = (1 - steps) * mean.numpy()[0] + steps * mean.numpy()[1]\n"
            "walk = vae.decode(path).numpy()\n"
            "fig, ax = plt.subplots(figsize=(10, 1.6))\n"
            "ax.imshow(np.concatenate(list(walk[..., 0]), axis=1), cmap=\"gray\")\n"
            "ax.axis(\"off\")\n"
            "plt.show()"
        ),
        new_code_cell(
            "from aigc_tf.metrics.likelihood import evaluate_likelihood\n"
            "from aigc_tf.tasks.image import binarised_test_set\n\n"
            "# The bounds `aigc-tf evaluate` reports (there on every test digit with k=1000; FID too), in nats per digit.\n"
            "xb, _ = binarised_test_set(session.config, limit=200)\n"
            "evaluate_likelihood(vae, xb, None, k=50, seed=0)"
        ),
        new_code_cell(
            "path = session.export(vae)\n"
            "print(path)"
        ),
    ],
    "text_vae_embedded": [
        new_markdown_cell(
            "# A text VAE on the embedded corpus\n\n"
            "Trains `configs/text_vae_embedded.yaml` (Bowman et al. 2016: an LSTM encoder to a Gaussian latent, an "
            "LSTM decoder from it, KL annealing and word dropout against posterior collapse) with `model.fit`, then "
            "decodes prior samples, reconstructs sentences through their posterior mean, walks the latent space "
            "between two sentences, and exports a string-in / string-out SavedModel. The model code lives in "
            "`aigc_tf/models/text_vae.py`. Runs and exports go to the notebook's own directories; "
            "`AIGC_TF_NOTEBOOK_SMALL=1` selects tiny settings."
        ),
        new_code_cell(
            "from aigc_tf.notebook import NotebookRun\n\n"
            "# 2 of the config's 10 epochs (a few minutes on 2 CPU cores).\n"
            "session = NotebookRun(\n"
            "    \"text_vae_embedded\",\n"
            "    full=[\"train.epochs=2\"],\n"
            "    small=[\"train.epochs=1\", \"train.steps_per_epoch=3\", \"model.embed_dim=16\", \"model.units=32\",\n"
            "           \"train.num_samples=1\"],\n"
            ")\n"
            "tvae = session.train()\n"
            "{k: v[-1] for k, v in session.history().items() if k in (\"loss\", \"reconstruction\", \"kl\", \"val_loss\")}"
        ),
        new_code_cell(
            "import tensorflow as tf\n\n"
            "# Prior samples: z ~ N(0, I) decoded, one seed each (an empty prompt asks for a prior sample).\n"
            "serve_like = dict(max_new_tokens=tf.constant([40] * 3), temperature=tf.constant([0.8] * 3),\n"
            "                  top_k=tf.constant([0] * 3), top_p=tf.constant([0.95] * 3), seeds=tf.constant([0, 1, 2]))\n"
            "z = tvae.prior_latents(serve_like[\"seeds\"])\n"
            "for text in tvae.decode_text(z, **serve_like)[\"texts\"].numpy():\n"
            "    print(repr(text.decode(\"utf-8\", errors=\"replace\")))"
        ),
        new_code_cell(
            "# Homotopy: decode evenly spaced points between two sentences' posterior means.\n"
            "for line in tvae.interpolate(\"The model is trained.\", \"A class of functions.\", steps=5, max_new_tokens=30):\n"
            "    print(repr(line))"
        ),
        new_code_cell(
            "path = session.export(tvae)\n"
            "serve = tf.saved_model.load(str(path)).signatures[\"serving_default\"]\n"
            "# Each prompt is encoded and its posterior mean decoded.\n"
            "serve(prompts=tf.constant([\"The model is trained.\"]), max_new_tokens=tf.constant([30]),\n"
            "      temperature=tf.constant([0.0]), top_k=tf.constant([0]), top_p=tf.constant([1.0]),\n"
            "      seed=tf.constant([0]))[\"texts\"]"
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
