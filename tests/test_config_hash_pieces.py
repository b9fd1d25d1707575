"""rl34 (issue 20): the configuration's content hash, written item by item so that a worker
thread computing it does not hold the GIL for the whole file (``Config._content_hash``), is
the hash of the whole dump it always was: seals name it, and a reload compares it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from monitor.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "config").glob("**/*.yaml"))


def _whole(config: Config) -> str:
    """The hash as computed before rl34: the whole configuration dumped at once."""
    dumped = config.model_dump(mode="json", fallback=repr, warnings=False)
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_the_hash_in_pieces_is_the_whole_dumps(path: Path) -> None:
    config = load_config(path)
    assert config.content_hash == _whole(config)


def test_every_section_counts(tmp_path: Path) -> None:
    """Each section moves the hash (one without support, one with an empty list)."""
    data = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    data["monitor"]["state_dir"] = str(tmp_path)
    hashes = set()
    for edit in (
        lambda d: None,
        lambda d: d.pop("support", None),
        lambda d: d.update(exclusions=[]),
        lambda d: d["targets"][0].update(name=d["targets"][0]["name"]),  # no change
        lambda d: d["monitor"].update(name="other"),
    ):
        edit(data)
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        config = load_config(path)
        assert config.content_hash == _whole(config)
        hashes.add(config.content_hash)
    assert len(hashes) >= 3
