"""Symbolic music: note sequences from MIDI files, the chorales and folk tunes
bundled with music21 and the JSB Chorales format; their representations as
``tf.data`` pipelines; the melody encoder-decoder LSTM, the note LSTM, the
music Transformer, the chorale RNN-NADE and the piano-roll GAN; MIDI,
piano-roll and WAV outputs; likelihoods beside Markov / n-gram baselines and
the Yang & Lerch and MuseGAN statistics.

Time: every note array here is in seconds at 120 beats per minute (a beat,
a quarter note, is 0.5 s). MIDI files are read through their own tempo map
into beats and written back at 120 bpm, so tempo is normalised, not kept.
"""
