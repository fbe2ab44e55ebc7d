"""Music data: MIDI in and out, the bundled corpora, the JSB format, the representations and their pipelines."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pretty_midi
import pytest
import tensorflow as tf

from aigc_tf.errors import DataError
from aigc_tf.music import corpus, jsb, midi
from aigc_tf.music import data as music_data
from aigc_tf.music import representations as R
from aigc_tf.music.notes import NOTE_DTYPE, Piece, make_notes, quantize, split_of
from aigc_tf.music.task import MusicDataConfig


def _notes(rows):
    """(pitch, start, end[, velocity[, voice]]) rows -> a note array."""
    rows = [tuple(r) + (80, 0)[len(r) - 3:] for r in rows]
    pitch, start, end, velocity, voice = zip(*rows, strict=True)
    return make_notes(pitch, start, end, velocity, voice)


def _merge_unisons_reference(notes):
    """Plain-Python reference: overlapping same-pitch notes become one (touching notes stay apart)."""
    out = []
    for pitch in sorted(set(notes["pitch"].tolist())):
        group = sorted(notes[notes["pitch"] == pitch], key=lambda n: (n["start"], n["end"]))
        current = list(group[0])
        for n in group[1:]:
            if n["start"] < current[2]:
                current[2] = max(current[2], n["end"])
            else:
                out.append(tuple(current))
                current = list(n)
        out.append(tuple(current))
    return make_notes([r[0] for r in out], [r[1] for r in out], [r[2] for r in out], [r[3] for r in out])


def _same(a, b):
    for field in ("pitch", "start", "end", "velocity"):
        np.testing.assert_array_equal(a[field], b[field], err_msg=field)


# ------------------------------------------------------------------ MIDI
def test_midi_round_trip_is_exact_with_voices_velocities_and_fine_times(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    ticks = rng.integers(0, 4000, n)  # any tick of the 480-per-beat grid, not only 16ths
    notes = make_notes(rng.integers(30, 90, n), ticks * 0.5 / 480, (ticks + rng.integers(1, 900, n)) * 0.5 / 480,
                       rng.integers(1, 128, n), rng.integers(0, 3, n))
    path = midi.write_midi(notes, tmp_path / "x.mid")
    piece, report = midi.read_midi(path)
    assert report.notes == n and report.tracks == 3 and piece.voices == 3
    for field in NOTE_DTYPE.names:
        np.testing.assert_array_equal(piece.notes[field], notes[field], err_msg=field)


def test_midi_tempo_is_normalised_to_120_bpm_and_drums_are_left_out(tmp_path):
    pm = pretty_midi.PrettyMIDI(initial_tempo=60.0)  # a beat is 1 s in the file
    piano, drums = pretty_midi.Instrument(0), pretty_midi.Instrument(0, is_drum=True)
    piano.notes.append(pretty_midi.Note(velocity=90, pitch=60, start=1.0, end=3.0))
    drums.notes.append(pretty_midi.Note(velocity=90, pitch=36, start=0.0, end=0.5))
    pm.instruments += [piano, drums]
    pm.write(str(tmp_path / "slow.mid"))
    piece, report = midi.read_midi(tmp_path / "slow.mid")
    assert (piece.notes["start"][0], piece.notes["end"][0]) == (0.5, 1.5)  # beats 1-3 at 120 bpm
    assert report.drum_tracks == 1 and "1 drum track(s) left out" in report.line()


def test_bad_midi_inputs_each_give_one_clear_error(tmp_path):
    (tmp_path / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(DataError, match=r"bad\.mid is not a readable MIDI file"):
        midi.read_midi(tmp_path / "bad.mid")
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes.append(pretty_midi.Note(velocity=90, pitch=36, start=0.0, end=0.5))
    pm.instruments.append(drums)
    pm.write(str(tmp_path / "drums.mid"))
    with pytest.raises(DataError, match=r"drums\.mid has only drum tracks"):
        midi.read_midi(tmp_path / "drums.mid")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no MIDI files"):
        midi.midi_files(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        midi.midi_files(tmp_path / "missing")


def test_a_midi_folder_reports_each_file(tmp_path, capsys):
    for i in range(3):
        midi.write_midi(_notes([(60 + i, 0, 0.5), (64, 0.5, 1.0)]), tmp_path / "sub" / f"{i}.mid")
    pieces, reports = midi.read_midi_folder(tmp_path)
    assert [p.name for p in pieces] == ["sub/0.mid", "sub/1.mid", "sub/2.mid"]
    out = capsys.readouterr().out
    assert out.count("2 notes in 1 track(s)") == 3


# ----------------------------------------------------------------- corpus
def test_chorales_parse_into_four_voices_and_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_TF_CACHE", str(tmp_path))
    names = corpus.chorale_names()
    assert len(names) == 350  # distinct files of the 371 Riemenschneider entries
    (piece,) = corpus.chorales(["bach/bwv269"])
    assert piece.voices == 4 and sorted(set(piece.notes["voice"].tolist())) == [0, 1, 2, 3]
    assert piece.beats_per_bar == 3.0 and piece.bar_phase == 1.0  # 3/4 with a two-beat pickup
    soprano = piece.notes[piece.notes["voice"] == 0]
    # The soprano of BWV 269 opens G4 (1 beat), G4 (2 beats), D5: seconds at 120 bpm, ties merged.
    assert soprano["pitch"][:3].tolist() == [67, 67, 74]
    assert soprano["start"][:3].tolist() == [0.0, 0.5, 1.5] and soprano["end"][:2].tolist() == [0.5, 1.5]
    cached = list((tmp_path / "music").glob("chorale-*.npz"))
    assert len(cached) == 1 and not list((tmp_path / "music").glob("*.tmp*"))
    (again,) = corpus.chorales(["bach/bwv269"], verbose=False)  # read back from the cache file
    np.testing.assert_array_equal(again.notes, piece.notes)
    cached[0].write_bytes(b"not a zip")  # a broken cache file is parsed again and replaced
    (third,) = corpus.chorales(["bach/bwv269"], verbose=False)
    np.testing.assert_array_equal(third.notes, piece.notes)


def test_abc_tunes_from_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_TF_CACHE", str(tmp_path / "cache"))
    (tmp_path / "t.abc").write_text("X:1\nT:One\nM:4/4\nL:1/4\nK:C\nC D E F|G2 G2|]\n\n"
                                    "X:2\nT:Two\nM:3/4\nL:1/8\nK:G\nG2 A2 B2|d6|]\n")
    tunes = corpus.folk_tunes(tmp_path / "t.abc", verbose=False)
    assert [t.name for t in tunes] == ["t/1", "t/2"]
    assert tunes[0].notes["pitch"].tolist() == [60, 62, 64, 65, 67, 67]
    assert tunes[0].notes["end"][-1] == 4.0  # 8 beats
    assert tunes[1].beats_per_bar == 3.0 and tunes[1].notes["pitch"].tolist() == [67, 69, 71, 74]


# -------------------------------------------------------------------- JSB
def test_jsb_json_and_plain_pickles_load_and_foreign_pickles_are_refused(tmp_path):
    data = {"train": [[[60, 64], [60, 64], []], [[62]]], "valid": [[[55]]], "test": [[[57, 60.0]]]}
    (tmp_path / "j.json").write_text(json.dumps(data))
    loaded = jsb.load_jsb(tmp_path / "j.json")
    assert loaded["train"][0] == [[60, 64], [60, 64], []] and loaded["test"] == [[[57, 60]]]
    with open(tmp_path / "j.pickle", "wb") as f:
        pickle.dump({"train": [[(60, 64)]], "valid": [], "test": []}, f, protocol=2)
    assert jsb.load_jsb(tmp_path / "j.pickle")["train"] == [[[60, 64]]]
    with open(tmp_path / "evil.pickle", "wb") as f:
        pickle.dump({"train": [[np.array([60, 64])]]}, f)
    with pytest.raises(DataError, match="only pickles of plain lists of integers"):
        jsb.load_jsb(tmp_path / "evil.pickle")
    (tmp_path / "bad.json").write_text(json.dumps({"train": [[["C4"]]]}))
    with pytest.raises(DataError, match="pitches are integers 0-127"):
        jsb.load_jsb(tmp_path / "bad.json")
    (tmp_path / "nosplit.json").write_text(json.dumps({"training": []}))
    with pytest.raises(DataError, match="unknown split"):
        jsb.load_jsb(tmp_path / "nosplit.json")


def test_frames_sample_each_beat_and_merge_back_into_notes():
    piece = Piece("p", _notes([(60, 0.0, 1.0), (64, 0.0, 0.5), (67, 0.25, 0.5), (72, 0.5, 1.5)]))
    # Beats at 0 s, 0.5 s, 1.0 s: the 67 (off-beat) and nothing else is missed.
    assert jsb.piece_frames(piece) == [[60, 64], [60, 72], [72]]
    tf_frames = R.frames_row(piece.notes["pitch"], piece.notes["start"], piece.notes["end"]).numpy()
    assert [sorted((np.nonzero(f)[0] + 21).tolist()) for f in tf_frames] == [[60, 64], [60, 72], [72]]
    back = jsb.frames_to_notes([[60, 64], [60, 72], [72]])
    assert [(n["pitch"], n["start"], n["end"]) for n in back] == [(60, 0, 1), (64, 0, 0.5), (72, 0.5, 1.5)]
    out = R.frames_to_notes_batch(tf_frames[None], [3])
    _same(R.notes_from_arrays(*[x.numpy() for x in out])[0], back)


def test_chorale_split_is_fixed_by_name():
    assert split_of("bach/bwv269") == split_of("bach/bwv269")
    counts = {s: 0 for s in ("train", "valid", "test")}
    for name in corpus.chorale_names():
        counts[split_of(name)] += 1
    assert counts == {"train": 200, "valid": 72, "test": 78}


# ------------------------------------------------------- representations
def test_event_tokens_by_hand_with_velocity_bars_and_long_shifts():
    vocab = R.EventVocabulary(steps_per_beat=4, max_shift=4, velocity_bins=4, bars=True, beats_per_bar=1)
    notes = _notes([(60, 0.0, 0.25, 100), (64, 0.0, 1.25, 100), (60, 0.25, 0.5, 20)])
    tokens = R.tokenize_row(vocab, notes["pitch"], notes["start"], notes["end"], notes["velocity"]).numpy()
    shown = [vocab.describe(t) for t in tokens]
    # Bars every 4 steps (1 beat); shifts of 10 steps split into 4 + 4 + 2, bars in between.
    assert shown == ["START", "BAR", "VEL(3)", "ON(60)", "ON(64)", "SHIFT(2)", "OFF(60)", "VEL(0)", "ON(60)",
                     "SHIFT(2)", "BAR", "OFF(60)", "SHIFT(4)", "BAR", "SHIFT(2)", "OFF(64)"]
    pitch, start, end, velocity, count = (x.numpy() for x in R.detokenize_batch(vocab, tokens[None]))
    back = R.notes_from_arrays(pitch, start, end, velocity, count)[0]
    # Velocities come back as their bin's centre (bins of 32: 100 -> 112, 20 -> 16).
    expected = _notes([(60, 0.0, 0.25, 112), (64, 0.0, 1.25, 112), (60, 0.25, 0.5, 16)])
    _same(back, expected)


def test_event_tokens_round_trip_on_real_chorales():
    vocab = R.EventVocabulary()
    pieces = corpus.chorales(corpus.chorale_names()[:4], verbose=False)
    toks = music_data.event_tokens(pieces, vocab)
    padded = np.zeros((len(toks), max(map(len, toks))), np.int32)
    for i, t in enumerate(toks):
        padded[i, : len(t)] = t
    detokenize = tf.function(lambda t: R.detokenize_batch(vocab, t))  # a graph: the scan is slow eagerly
    pitch, start, end, velocity, count = (x.numpy() for x in detokenize(tf.constant(padded)))
    for i, piece in enumerate(pieces):
        back = R.notes_from_arrays(pitch[i : i + 1], start[i : i + 1], end[i : i + 1], velocity[i : i + 1],
                                   count[i : i + 1])[0]
        expected = _merge_unisons_reference(quantize(piece.notes, 4))
        _same(back, expected)
        assert len(expected) < len(piece.notes) or i  # unisons between voices exist and are merged


def test_melody_is_the_skyline_and_decodes_back():
    notes = _notes([(60, 0.0, 0.5), (67, 0.0, 0.25), (64, 0.5, 0.75), (62, 1.0, 1.25)])
    tokens = R.melody_row(notes["pitch"], notes["start"], notes["end"]).numpy()
    on = lambda p: R.MELODY_ON + p  # noqa: E731
    h, r = R.MELODY_HOLD, R.MELODY_REST
    # 67 wins step 0 and ends at step 2 (rest), 64 at 4..6, rest, 62 at 8..10.
    assert tokens.tolist() == [on(67), h, r, h, on(64), h, r, h, on(62), h]
    out = R.melody_to_notes_batch(tokens[None])
    back = R.notes_from_arrays(*[x.numpy() for x in out])[0]
    _same(back, _notes([(67, 0.0, 0.25), (64, 0.5, 0.75), (62, 1.0, 1.25)]))


def test_note_events_by_hand_and_back():
    notes = _notes([(60, 0.0, 0.5), (64, 0.0, 0.25), (67, 0.75, 9.0)])
    pitch, step, duration = (x.numpy() for x in R.note_events_row(notes["pitch"], notes["start"], notes["end"],
                                                                    max_step=8, max_duration=16))
    assert pitch.tolist() == [60, 64, 67] and step.tolist() == [0, 0, 6] and duration.tolist() == [4, 2, 16]
    out = R.note_events_to_notes_batch(pitch[None], step[None], duration[None], [3])
    back = R.notes_from_arrays(*[x.numpy() for x in out])[0]
    _same(back, _notes([(60, 0.0, 0.5), (64, 0.0, 0.25), (67, 0.75, 2.75)]))  # duration clipped at 16 steps


def test_piano_roll_round_trip():
    notes = _notes([(40, 0.0, 0.5, 80, 0), (41, 0.25, 0.5, 80, 1), (40, 0.5, 0.75, 80, 0)])
    roll = R.piano_roll(notes, 4, 8, pitch_low=36, num_pitches=12, voices=2)
    assert roll.shape == (8, 12, 2) and roll[:6, 4, 0].all() and roll[2:4, 5, 1].all() and roll.sum() == 8
    back = R.roll_to_notes(roll, 4, 36)
    # The two 40s of voice 0 touch, so the roll holds one 40 over steps 0-2.
    assert [(n["pitch"], n["start"], n["end"], n["voice"]) for n in back] == [(40, 0, 0.75, 0), (41, 0.25, 0.5, 1)]


def test_transposition_is_clipped_to_the_range():
    tokens = tf.constant([2, 3 + 120, 3 + 100, 3 + 128 + 120])  # START, ON(120), ON(100), OFF(120)
    out, k = music_data.transpose_tokens(tokens, tf.constant(12), 3)
    assert int(k) == 7 and out.numpy().tolist() == [2, 3 + 127, 3 + 107, 3 + 128 + 120]
    frames = tf.one_hot([[2, 80]], 88)[0]  # keys 2 and 80 on
    moved = music_data.transpose_roll(frames, tf.constant(-5), 1, 88)
    assert np.nonzero(moved.numpy())[1].tolist() == [0, 78]  # clipped to -2


# --------------------------------------------------------------- pipelines
@pytest.mark.parametrize("representation", ["events", "melody", "notes", "frames", "rolls"])
def test_pipelines_on_a_few_chorales(representation):
    d = MusicDataConfig(name="chorales", max_examples=6, batch_size=4, seq_len=32, transpose=3)
    params = {"steps_per_beat": 4, "max_shift": 16, "velocity_bins": 0, "bars": False, "max_step": 16,
              "max_duration": 16, "pitch_low": 36, "num_pitches": 48, "voices": 4}
    params["bars"] = 2 if representation == "rolls" else False
    data = music_data.load_music_data(d, representation, params, seed=0, verbose=False)
    assert len(data.pieces["train"]) == 6 and len(data.pieces["valid"]) == 4
    batch = next(iter(data.train))
    if representation == "events":
        x, y = batch
        assert x.shape == (4, 32) and x.dtype == tf.int32
        np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    elif representation == "melody":
        x, y = batch
        assert x["prefix"].shape == (4, 16) and y.shape == (4, 16)
        np.testing.assert_array_equal(x["decoder_inputs"][:, 1:], y[:, :-1])
    elif representation == "notes":
        x, y = batch
        assert set(x) == {"pitch", "step", "duration", "velocity"} and x["pitch"].shape == (4, 32)
        np.testing.assert_array_equal(x["step"][:, 1:], y["step"][:, :-1])
    elif representation == "frames":
        assert batch["frames"].shape[2] == 88 and batch["frames"].shape[1] == int(max(batch["length"]))
    else:
        assert batch["rolls"].shape == (4, 2, 16, 48, 4)
        assert set(np.unique(batch["rolls"].numpy()).tolist()) == {-1.0, 1.0}
    assert data.test is not None


def test_an_empty_split_or_too_short_data_is_a_clear_error(tmp_path):
    midi.write_midi(_notes([(60, 0, 0.5)]), tmp_path / "one.mid")
    name = "one.mid"
    d = MusicDataConfig(name="midi", path=str(tmp_path), seq_len=64)
    params = {"steps_per_beat": 4, "max_shift": 16, "velocity_bins": 0, "bars": False}
    with pytest.raises(DataError, match="no training pieces" if split_of(name) != "train" else "shorter than"):
        music_data.load_music_data(d, "events", params, verbose=False)


def test_cache_writes_are_atomic_under_concurrent_writers(tmp_path):
    import threading

    pieces = [Piece(f"p{i}", _notes([(60 + i, 0.0, 0.5)] * (i + 1))) for i in range(50)]
    path = tmp_path / "c.npz"
    corpus._save(path, pieces)
    errors = []

    def write():
        for _ in range(20):
            corpus._save(path, pieces)

    def read():
        for _ in range(100):
            try:
                assert len(corpus._load(path)) == 50
            except Exception as exc:  # a half-written file would fail to load
                errors.append(exc)

    threads = [threading.Thread(target=f) for f in (write, write, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and [p.name for p in corpus._load(path)] == [p.name for p in pieces]
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left behind


def test_a_jsb_file_feeds_the_frame_pipeline_with_its_own_splits(tmp_path):
    data = {"train": [[[60, 64, 67], [60, 64, 67], [62, 65]], [[48], []]], "valid": [[[55, 59]]],
            "test": [[[57], [57, 60]]]}
    jsb.save_jsb_json(data, tmp_path / "j.json")
    d = MusicDataConfig(name="jsb", path=str(tmp_path / "j.json"), batch_size=2, seq_len=None)
    out = music_data.load_music_data(d, "frames", {}, verbose=False)
    assert [len(out.pieces[s]) for s in ("train", "valid", "test")] == [2, 1, 1]
    batch = next(iter(out.build("train")))
    frames, lengths = batch["frames"].numpy(), batch["length"].numpy()
    assert sorted(lengths.tolist()) == [2, 3]  # both pieces in one batch, padded to 3 frames
    long = frames[int(np.argmax(lengths))]
    assert [sorted((np.nonzero(f)[0] + 21).tolist()) for f in long] == data["train"][0]
    np.testing.assert_array_equal(out.examples["test"][0].sum(axis=1), [1, 2])
