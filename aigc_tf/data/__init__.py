"""Data sources (tf.data pipelines). The dataset names below import nothing heavy,
so config validation can check them without TensorFlow."""

IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "celeb_a", "npz", "idx", "folder")
TEXT_DATASETS = ("embedded", "text", "imdb_reviews", "aclimdb")
TOKENIZER_LEVELS = ("char", "word")
AUDIO_DATASETS = ("spoken_digits", "speech_commands", "spoken_digit", "nsynth", "folder")
