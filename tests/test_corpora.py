"""Corpus readers on small trees with each corpus' real names: labels, speakers and order."""
import os

import pytest

from timnet_keras.corpora import CorpusError, natural_key, read_corpus


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
