import pytest

from bluerec.rewards import completion_text, is_degenerate


def test_completion_text_accepts_strings_and_messages():
    assert completion_text("likes tea") == "likes tea"
    assert completion_text([{"role": "assistant", "content": "likes tea"}]) == "likes tea"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "likes tea"}]}]) == "likes tea"
    assert completion_text({"role": "assistant", "content": "x"}) == "x"
    assert completion_text([{"role": "tool", "content": "ignored"}, {"role": "assistant", "content": "kept"}]) == "kept"
    assert completion_text(None) == ""
    assert completion_text([]) == ""
    with pytest.raises(TypeError):
        completion_text(42)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", True), ("   \n\t", True), ("!!! ...", True), ("good good GOOD", True), ("good", False),
     ("likes red shoes", False), ("tea, tea and more tea", False)],
)
def test_is_degenerate(text, expected):
    assert is_degenerate(text) is expected
