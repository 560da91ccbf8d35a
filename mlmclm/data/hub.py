"""The Hugging Face Hub, the data layer's one network dependency: does it answer, and reading its cache only.

Reached only for what the user names with ``hf:`` (a tokenizer or a dataset). Why it exists: for a file that it
cannot reach and has not cached, huggingface_hub retries with backoff (1+2+4+8+8 s of sleep per request; no
setting turns that off), and transformers and datasets ask for several files, so with no network the error came
after about 50 s (tokenizer) or 25 s (dataset) of silence, and a cached tokenizer could take minutes to load.
One request without retries, the one huggingface_hub's own download starts with, tells "no answer" apart at
once; the caller then reads the local cache only, which is all the libraries fall back to anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType


def hub_unreachable_reason(repo_id: str, repo_type: str = "model") -> str | None:
    """Why the Hub gave no answer about ``repo_id``, or None when it answered or is offline by choice.

    One HEAD request for the repo's ``README.md`` with huggingface_hub's ``get_hf_file_metadata`` (no retries;
    its timeout is ``HF_HUB_ETAG_TIMEOUT``, 10 s by default). Any HTTP answer, a 404 or 401 too, means the Hub
    is there: the library's own download then reports what is wrong, as before.
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        return None  # HF_HUB_OFFLINE=1: the libraries read their caches and ask nothing
    try:
        get_hf_file_metadata(
            hf_hub_url(repo_id, "README.md", repo_type=repo_type), timeout=constants.HF_HUB_ETAG_TIMEOUT
        )
    except (HfHubHTTPError, ValueError):
        return None  # an answer, or a name the Hub would refuse: the download reports it
    except Exception as exc:  # no answer: DNS, refused, timeout, TLS, proxy (the type is the HTTP client's)
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


@contextlib.contextmanager
def datasets_offline(datasets: ModuleType) -> Iterator[None]:
    """``datasets`` (and the Hub client under it) in offline mode for one call: its cache only, no request.

    What ``HF_HUB_OFFLINE=1`` sets, set on the modules because both read the variable once, at import; the
    previous values come back afterwards. ``HF_DATASETS_OFFLINE`` is the name datasets before 2.19 read.
    """
    from huggingface_hub import constants

    switches = [
        (module, name)
        for module in (datasets.config, constants)
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
        if hasattr(module, name)
    ]
    saved = [getattr(module, name) for module, name in switches]
    for module, name in switches:
        setattr(module, name, True)
    try:
        yield
    finally:
        for (module, name), value in zip(switches, saved, strict=True):
            setattr(module, name, value)
