"""One request without retries tells an unreachable Hugging Face Hub apart from one that answers."""

from __future__ import annotations

import pytest

from mlmclm.data.hub import hub_unreachable_reason

hub_constants = pytest.importorskip("huggingface_hub.constants")


def test_a_hub_that_does_not_answer_is_named_after_one_request(unreachable_hub):
    assert "Name or service not known" in hub_unreachable_reason("some-org/some-bert")
    assert 0 < len(unreachable_hub) <= 2  # no retries (the Hub client looks up one registry once a process)


def test_an_http_error_is_an_answer(monkeypatch):
    """A 404 or 401 means the Hub is there: the library's own download reports it, as before."""
    httpx2 = pytest.importorskip("httpx2")  # the HTTP client of this huggingface_hub
    import huggingface_hub
    from huggingface_hub.utils import HfHubHTTPError

    def not_found(url, **kwargs):
        response = httpx2.Response(404, request=httpx2.Request("HEAD", url))
        raise HfHubHTTPError("404 Client Error", response=response)

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", not_found)
    assert hub_unreachable_reason("some-org/absent", repo_type="dataset") is None


def test_offline_mode_asks_the_hub_nothing(monkeypatch, unreachable_hub):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    assert hub_unreachable_reason("some-org/some-bert") is None
    assert unreachable_hub == []
