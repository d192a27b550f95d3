"""Corpus readers on small trees with each corpus' real names: labels, speakers and order."""
import os

import pytest

from timnet_keras.features.corpora import CorpusError, natural_key, read_corpus


def touch(root, *relative):
    for rel in relative:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()


def names(utterances):
    return [(os.path.basename(u.path), u.label, u.speaker) for u in utterances]


def test_emodb_names_give_emotion_speaker_and_the_authors_order(tmp_path):
    touch(tmp_path, "wav/03a01Wa.wav", "wav/16b10Wb.wav", "wav/03a01Nc.wav", "wav/08a02Lc.wav", "wav/readme.txt")
    labels, utts = read_corpus("EMODB", str(tmp_path))
    assert labels[0] == "angry"
    assert names(utts) == [("03a01Wa.wav", "angry", "03"), ("16b10Wb.wav", "angry", "16"),
                           ("08a02Lc.wav", "boredom", "08"), ("03a01Nc.wav", "neutral", "03")]


def test_casia_speaker_emotion_folders(tmp_path):
    touch(tmp_path, "liuchanhg/angry/201.wav", "wangzhe/sad/210.wav", "ZhaoZuoxiang/surprise/250.wav", "zhaoquanyin/fear/2.wav")
    _, utts = read_corpus("casia", str(tmp_path))
    assert [(u.label, u.speaker) for u in utts] == [("angry", "liuchanhg"), ("fear", "zhaoquanyin"), ("sad", "wangzhe"), ("surprise", "ZhaoZuoxiang")]


def test_emovo_codes_and_speakers(tmp_path):
    touch(tmp_path, "f1/rab-f1-b1.wav", "m3/tri-m3-n5.wav", "f2/pau-f2-l1.wav", "m1/gio-m1-d2.wav")
    _, utts = read_corpus("EMOVO", str(tmp_path))
    assert [(u.label, u.speaker) for u in utts] == [("angry", "f1"), ("fear", "f2"), ("happy", "m1"), ("sad", "m3")]


@pytest.mark.parametrize("layout", ["Actor_{a}/{n}", "{n}"])
def test_ravdess_speech_audio_only_with_actor_speakers(tmp_path, layout):
    files = ["03-01-05-01-01-01-12.wav", "03-01-02-02-01-02-01.wav", "01-01-05-01-01-01-12.wav", "03-02-05-01-01-01-12.wav"]
    touch(tmp_path, *[layout.format(a=f[-6:-4], n=f) for f in files])
    labels, utts = read_corpus("RAVDESS", str(tmp_path))
    assert len(labels) == 8
    assert [(u.label, u.speaker) for u in utts] == [("angry", "12"), ("calm", "01")]


@pytest.mark.parametrize("layout", ["{s}/{c}.wav", "{s}_{c}.wav"])
def test_savee_two_letter_codes_are_not_confused(tmp_path, layout):
    codes = [("DC", "a01"), ("JE", "sa03"), ("JK", "su10"), ("KL", "n2"), ("DC", "d15")]
    touch(tmp_path, *[layout.format(s=s, c=c) for s, c in codes])
    _, utts = read_corpus("SAVEE", str(tmp_path))
    assert [(u.label, u.speaker) for u in utts] == [("angry", "DC"), ("disgust", "DC"), ("neutral", "KL"), ("sad", "JE"), ("surprise", "JK")]


def test_iemocap_labels_merge_excited_into_happy_and_drop_others(tmp_path):
    session = tmp_path / "Session1"
    touch(session, "sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav", "sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav",
          "sentences/wav/Ses01F_impro01/Ses01F_impro01_F002.wav", "sentences/wav/Ses01F_impro01/Ses01F_impro01_M003.wav")
    (session / "dialog" / "EmoEvaluation").mkdir(parents=True)
    (session / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt").write_text(
        "% header\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "[10.0 - 11.0]\tSes01F_impro01_M001\texc\t[3.0, 3.0, 3.0]\n"
        "[12.0 - 13.0]\tSes01F_impro01_F002\tfru\t[3.0, 3.0, 3.0]\n"
        "[14.0 - 15.0]\tSes01F_impro01_M003\tang\t[3.0, 3.0, 3.0]\n")
    labels, utts = read_corpus("IEMOCAP", str(tmp_path))
    assert labels == ("angry", "happy", "neutral", "sad")
    assert [(u.label, u.speaker) for u in utts] == [("angry", "Ses01M"), ("happy", "Ses01M"), ("neutral", "Ses01F")]


def test_own_corpus_folders_in_natural_order_with_a_speaker_regex(tmp_path):
    touch(tmp_path, "joy/spkA_10.wav", "joy/spkA_2.wav", "calm/spkB_1.wav")
    labels, utts = read_corpus("MyCorpus", str(tmp_path), speaker_regex=r"^(spk\w)_")
    assert labels == ("calm", "joy")
    assert names(utts) == [("spkB_1.wav", "calm", "spkB"), ("spkA_2.wav", "joy", "spkA"), ("spkA_10.wav", "joy", "spkA")]


def test_own_corpus_label_order_can_be_given(tmp_path):
    touch(tmp_path, "joy/a.wav", "calm/b.wav")
    labels, utts = read_corpus("Mine", str(tmp_path), labels=["joy", "calm"])
    assert labels == ("joy", "calm") and utts[0].label == "joy"


def test_missing_folder_and_no_audio_say_what_to_do(tmp_path):
    with pytest.raises(CorpusError, match="--wav_dir"):
        read_corpus("EMODB", str(tmp_path / "nowhere"))
    with pytest.raises(CorpusError, match="no EMODB audio found"):
        read_corpus("EMODB", str(tmp_path))


def test_natural_sort_puts_2_before_10():
    assert sorted(["a10", "a2", "a1"], key=natural_key) == ["a1", "a2", "a10"]


# --- properties of the name parsers, on any text ---------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from timnet_keras.features.corpora import (  # noqa: E402
    EMODB_EMOTIONS, EMOVO_EMOTIONS, RAVDESS_EMOTIONS, SAVEE_EMOTIONS, emodb_name, emovo_name, ravdess_name, savee_name)

ALL_LABELS = set(EMODB_EMOTIONS.values()) | set(EMOVO_EMOTIONS.values()) | set(RAVDESS_EMOTIONS.values()) | set(SAVEE_EMOTIONS.values())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_no_file_name_makes_a_parser_fail_or_invent_a_label(stem):
    for parse in (emodb_name, emovo_name, ravdess_name, lambda s: savee_name(s, "DC")):
        parsed = parse(stem)
        assert parsed is None or (parsed[0] in ALL_LABELS and isinstance(parsed[1], str) and parsed[1])


@given(st.sampled_from(["03", "08", "16"]), st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=3, max_size=3),
       st.sampled_from(sorted(EMODB_EMOTIONS)), st.sampled_from("abcdef"))
def test_every_emodb_name_gives_its_emotion_and_speaker(speaker, text, letter, version):
    assert emodb_name(f"{speaker}{text}{letter}{version}") == (EMODB_EMOTIONS[letter], speaker)


@given(st.sampled_from(sorted(RAVDESS_EMOTIONS)), st.integers(1, 24), st.sampled_from(["01", "02"]))
def test_ravdess_speech_names_give_emotion_and_actor_and_song_names_none(emotion, actor, modality):
    stem = f"03-{modality}-{emotion}-01-02-01-{actor:02d}"
    assert ravdess_name(stem) == ((RAVDESS_EMOTIONS[emotion], f"{actor:02d}") if modality == "01" else None)


@given(st.sampled_from(sorted(SAVEE_EMOTIONS)), st.integers(1, 30), st.sampled_from(["DC", "je", "Kl"]), st.booleans())
def test_savee_codes_are_never_confused_flat_or_in_folders(code, number, speaker, flat):
    stem = f"{speaker}_{code}{number:02d}" if flat else f"{code}{number:02d}"
    assert savee_name(stem, "" if flat else speaker) == (SAVEE_EMOTIONS[code], speaker.upper())
