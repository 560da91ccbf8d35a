from mlmclm.probes.sentences import build_sentence_pool, sentence_key, split_sentences


def test_split_sentences_ends_at_terminal_punctuation_and_line_breaks():
    text = "First one here.  Second?Not split! Third\nfourth line   with   spaces"
    assert split_sentences(text) == [
        "First one here.",
        "Second?Not split!",
        "Third",
        "fourth line with spaces",
    ]


def test_sentence_key_ignores_case_and_spacing():
    assert sentence_key("The  Cat sat.") == sentence_key("the cat   sat.")


def test_pool_excludes_training_sentences_repeats_short_lines_and_code():
    heldout = [
        "The cat sat on the mat. A brand new sentence appears here. Too short. x = f(a, b) + g[0] * 3;",
        "A brand new sentence appears here. Another unseen sentence of prose here.",
    ]
    training = ["Unrelated text comes first. THE CAT  sat on the mat."]
    pool = build_sentence_pool(heldout, training, max_words=40)
    usable = [pool.sentence(p) for p in pool.usable_sentences()]
    assert usable == ["A brand new sentence appears here.", "Another unseen sentence of prose here."]
    assert pool.documents[0][0] == "The cat sat on the mat."  # kept for adjacency, but not usable


def test_pool_drops_sentences_longer_than_max_words():
    long_sentence = " ".join(["word"] * 12) + "."
    pool = build_sentence_pool([f"{long_sentence} Short but long enough sentence."], [], max_words=8)
    assert [pool.sentence(p) for p in pool.usable_sentences()] == ["Short but long enough sentence."]
