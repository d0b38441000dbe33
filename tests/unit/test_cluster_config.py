"""The [cluster] table: read like every other table, each bad value named with what is allowed."""

from __future__ import annotations

import pytest

from wampgate.config import ConfigError, load
from tests.support.router import REALM1_ANONYMOUS_ALL, listener

BASE = listener("universal") + REALM1_ANONYMOUS_ALL


def _load(tmp_path, cluster: str):
    path = tmp_path / "router.toml"
    path.write_text(BASE + "\n[cluster]\n" + cluster)
    return load(path)


def test_no_cluster_table_means_no_cluster(tmp_path):
    path = tmp_path / "router.toml"
    path.write_text(BASE)
    assert load(path).cluster is None


def test_the_smallest_table_is_the_redis_url(tmp_path):
    config = _load(tmp_path, 'redis = "redis://127.0.0.1:6390"')
    assert (config.cluster.redis, config.cluster.workers, config.cluster.bucket_depth) == ("redis://127.0.0.1:6390",
                                                                                            1, 2)


@pytest.mark.parametrize("line, expected", [
    ('redis = "http://127.0.0.1"', "cluster.redis"),
    ('redis = "redis://127.0.0.1:99999"', "cluster.redis"),
    ('node = "has space"', "cluster.node"),
    ("workers = 0", "cluster.workers"),
    ("node_timeout = 1.0\nheartbeat_interval = 1.0", "expected at least twice cluster.heartbeat_interval"),
    ("colour = 1", "cluster.colour: unknown key"),
])
def test_bad_values_are_named(tmp_path, line, expected):
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, line)
    assert expected in str(refused.value)


def test_a_password_is_never_shown(tmp_path):
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, 'redis = "redis://:hunter2@127.0.0.1:99999"')
    assert "hunter2" not in str(refused.value)
