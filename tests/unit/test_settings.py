import pytest

from service.cli import build_parser
from service.errors import ConfigError
from service.settings import Settings, load_settings


def test_env_and_flags(monkeypatch):
    monkeypatch.setenv("CROWDGUARD_BATCH_SIZE", "64")
    monkeypatch.setenv("CROWDGUARD_KAFKA_SASL_PASSWORD", "hunter2")
    s = load_settings(batch_size=None, topic_flags="custom.flags")
    assert s.batch_size == 64 and s.topic_flags == "custom.flags"
    assert load_settings(batch_size="8").batch_size == 8  # flags win over env
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.masked())


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(Exception):
        s.batch_size = 3  # type: ignore[misc]


@pytest.mark.parametrize("over", [{"batch_size": 0}, {"device": "tpu"},
                                  {"kafka_bootstrap": "nohostport"}, {"unknown_key": 1}])
def test_bad_values_raise_config_error(over):
    with pytest.raises(ConfigError):
        load_settings(**over)


def test_every_setting_has_a_flag():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["run"]  # noqa: SLF001
    flags = {o for a in sub._actions for o in a.option_strings}  # noqa: SLF001
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in flags


def test_readme_documents_every_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in Settings.model_fields:
        flag = "--" + name.replace("_", "-")
        assert flag in readme, f"README configuration table lacks {flag}"
