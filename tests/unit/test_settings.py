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


def test_a_child_process_gets_the_same_settings(monkeypatch):
    from service.cli import _settings_from

    for name in Settings.model_fields:
        monkeypatch.delenv("CROWDGUARD_" + name.upper(), raising=False)
    s = load_settings(topic_submissions="t.subs", batch_size=7, include_text=True,
                      kafka_bootstrap="127.0.0.1:1234", kafka_sasl_username="u",
                      kafka_sasl_password="hunter2", threads=3)
    argv, env = s.for_child()
    assert "hunter2" not in " ".join(argv)  # secrets travel in the environment, not in ps
    assert env == {"CROWDGUARD_KAFKA_SASL_PASSWORD": "hunter2"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    child = _settings_from(build_parser().parse_args(["run", *argv]))
    assert child == s


@pytest.mark.parametrize(("level", "library", "expected"), [
    ("INFO", None, "WARNING"), ("DEBUG", None, "INFO"), ("ERROR", None, "ERROR"),
    ("INFO", "INFO", "INFO"), ("DEBUG", "WARNING", "WARNING")])
def test_library_log_level(level, library, expected):
    import logging

    from service.logs import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level
                                           for n in ("aiokafka", "kafka", "faust", "mode")}
    try:
        setup_logging(level, "json", library)
        assert root.level == logging.getLevelName(level)
        for name in ("aiokafka", "kafka", "faust", "mode"):
            assert logging.getLogger(name).level == logging.getLevelName(expected)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, lvl in saved[2].items():
            logging.getLogger(name).setLevel(lvl)


def test_library_log_level_from_env(monkeypatch):
    monkeypatch.setenv("CROWDGUARD_LOG_LIBRARY_LEVEL", "INFO")
    assert load_settings().log_library_level == "INFO"
    with pytest.raises(ConfigError):
        load_settings(log_library_level="LOUD")
