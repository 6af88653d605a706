"""Where configuration comes from: settings < YAML file < environment < command line."""

import pytest

from dj_queue.config_loading import CommandLine, load_config, read_yaml, skip_recurring
from dj_queue.exceptions import ConfigurationError

SETTINGS = {
    "mode": "async",
    "shutdown_timeout": 7,
    "workers": [{"queues": ["default"], "threads": 2}],
    "scheduler": {"polling_interval": 9, "dynamic_tasks_enabled": True},
}


@pytest.fixture
def yaml_file(tmp_path):
    def write(text: str):
        path = tmp_path / "dj_queue.yml"
        path.write_text(text)
        return str(path)

    return write


def test_settings_alone(tmp_path):
    config = load_config("default", SETTINGS, environ={})
    assert config.mode == "async"
    assert config.shutdown_timeout == 7
    assert config.workers[0].queues == ("default",)


def test_yaml_file_from_environment_overrides_settings_key_by_key(yaml_file):
    path = yaml_file("shutdown_timeout: 3\nscheduler:\n  polling_interval: 2\n")
    config = load_config("default", SETTINGS, environ={"DJ_QUEUE_CONFIG": path})
    assert config.shutdown_timeout == 3
    # Mappings merge: the YAML file's scheduler keeps the settings' other key.
    assert config.scheduler.polling_interval == 2
    assert config.scheduler.dynamic_tasks_enabled is True
    # Keys the file does not name keep their settings value.
    assert config.mode == "async"
    assert config.workers[0].threads == 2


def test_yaml_lists_replace_settings_lists(yaml_file):
    path = yaml_file("workers:\n  - queues: [email]\n    threads: 5\n")
    config = load_config("default", SETTINGS, environ={"DJ_QUEUE_CONFIG": path})
    assert [(w.queues, w.threads) for w in config.workers] == [(("email",), 5)]


def test_config_flag_wins_over_environment_file(yaml_file, tmp_path):
    env_file = tmp_path / "env.yml"
    env_file.write_text("shutdown_timeout: 11\n")
    flag_file = yaml_file("shutdown_timeout: 12\n")
    config = load_config(
        "default",
        SETTINGS,
        environ={"DJ_QUEUE_CONFIG": str(env_file)},
        command_line=CommandLine(config_path=flag_file),
    )
    assert config.shutdown_timeout == 12


@pytest.mark.parametrize(
    ("settings_mode", "yaml_mode", "env_mode", "cli_mode", "expected"),
    [
        (None, None, None, None, "fork"),
        ("async", None, None, None, "async"),
        ("async", "fork", None, None, "fork"),
        ("fork", "fork", "async", None, "async"),
        ("async", "async", "async", "fork", "fork"),
        (None, None, "async", None, "async"),
        (None, "async", None, "fork", "fork"),
    ],
)
def test_mode_precedence(yaml_file, settings_mode, yaml_mode, env_mode, cli_mode, expected):
    settings = {"mode": settings_mode} if settings_mode else {}
    environ = {}
    if yaml_mode:
        environ["DJ_QUEUE_CONFIG"] = yaml_file(f"mode: {yaml_mode}\n")
    if env_mode:
        environ["DJ_QUEUE_MODE"] = env_mode
    config = load_config(
        "default", settings, environ=environ, command_line=CommandLine(mode=cli_mode)
    )
    assert config.mode == expected


def test_bad_mode_in_environment_names_the_variable():
    with pytest.raises(ConfigurationError, match="DJ_QUEUE_MODE"):
        load_config("default", {}, environ={"DJ_QUEUE_MODE": "threads"})


def test_bad_settings_are_named_as_settings(yaml_file):
    with pytest.raises(
        ConfigurationError, match=r"TASKS\['default'\]\['OPTIONS'\]\['shutdown_timeout'\]"
    ):
        load_config("default", {"shutdown_timeout": -1}, environ={})


def test_bad_value_in_yaml_names_the_file_line_and_key(yaml_file):
    path = yaml_file("mode: async\nworkers:\n  - queues: [a]\n    threads: 0\n")
    with pytest.raises(ConfigurationError) as raised:
        load_config("default", {}, environ={"DJ_QUEUE_CONFIG": path})
    message = str(raised.value)
    assert message.startswith(f"{path}, line 4:")
    assert "['workers'][0]['threads']" in message


def test_unknown_key_in_yaml_is_refused(yaml_file):
    path = yaml_file("shutdown_timeout: 3\ncolour: blue\n")
    with pytest.raises(ConfigurationError, match=r"unknown option.*'colour'"):
        read_yaml(path)


def test_yaml_syntax_error_names_the_line(yaml_file):
    path = yaml_file("mode: async\nworkers: [\n  threads: 3\n")
    with pytest.raises(ConfigurationError, match=rf"{path}, line \d+: not valid YAML"):
        read_yaml(path)


def test_yaml_that_is_not_a_mapping_is_refused(yaml_file):
    path = yaml_file("- mode: async\n")
    with pytest.raises(ConfigurationError, match="expected a mapping"):
        read_yaml(path)


def test_empty_yaml_file_changes_nothing(yaml_file):
    path = yaml_file("# nothing here\n")
    assert load_config("default", SETTINGS, environ={"DJ_QUEUE_CONFIG": path}).shutdown_timeout == 7


def test_missing_yaml_file_names_the_source(tmp_path):
    missing = str(tmp_path / "nope.yml")
    with pytest.raises(ConfigurationError, match=rf"{missing} \(from DJ_QUEUE_CONFIG\)"):
        load_config("default", {}, environ={"DJ_QUEUE_CONFIG": missing})
    with pytest.raises(ConfigurationError, match=rf"{missing} \(from --config\)"):
        load_config("default", {}, environ={}, command_line=CommandLine(config_path=missing))


def test_yaml_cannot_make_a_valid_pair_invalid_unnoticed(yaml_file):
    # Each source is valid alone; merged, the threshold is below the interval.
    path = yaml_file("process_alive_threshold: 30\n")
    with pytest.raises(ConfigurationError, match="process_alive_threshold"):
        load_config(
            "default", {"process_heartbeat_interval": 60}, environ={"DJ_QUEUE_CONFIG": path}
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("", False),
    ],
)
def test_skip_recurring_from_environment(value, expected):
    assert skip_recurring(environ={"DJ_QUEUE_SKIP_RECURRING": value}) is expected


def test_skip_recurring_flag_wins():
    assert skip_recurring(environ={}, command_line=CommandLine(skip_recurring=True)) is True


def test_bad_skip_recurring_value_names_the_variable():
    with pytest.raises(ConfigurationError, match="DJ_QUEUE_SKIP_RECURRING='maybe'"):
        skip_recurring(environ={"DJ_QUEUE_SKIP_RECURRING": "maybe"})


def test_a_bad_cron_expression_in_yaml_names_the_file_line_key_and_field(yaml_file):
    path = yaml_file(
        "recurring:\n  nightly:\n"
        "    task_path: tests.taskapp.tasks.add\n    schedule: '0 25 * * *'\n"
    )
    with pytest.raises(ConfigurationError) as raised:
        load_config("default", {}, environ={"DJ_QUEUE_CONFIG": path})
    message = str(raised.value)
    assert message.startswith(f"{path}, line ")
    assert "['recurring']['nightly']['schedule']" in message
    assert "not a cron expression" in message
