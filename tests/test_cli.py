"""The `fope` dispatcher: every command registers, and renamed commands still run under their old names."""

from __future__ import annotations

import pytest

from fope.cli import COMMANDS, RENAMED, build_parser, main, renamed


def test_every_command_registers_and_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert list(commands) == list(COMMANDS)
    for name in COMMANDS:
        with pytest.raises(SystemExit) as stop:
            main([name, "--help"])
        assert stop.value.code == 0, name
        assert f"fope {name}" in capsys.readouterr().out


@pytest.mark.parametrize("old, new", list(RENAMED.items()))
def test_renamed_commands_point_at_their_new_name(old, new, capsys):
    assert renamed([*old, "--out", "x"]) == [*new, "--out", "x"]
    err = capsys.readouterr().err.strip()
    assert err == f"fope: `fope {' '.join(old)}` is now `fope {' '.join(new)}`; the old name is deprecated"
    with pytest.raises(SystemExit) as stop:  # the old name still runs the command
        main([*old, "--help"])
    assert stop.value.code == 0
    captured = capsys.readouterr()
    assert f"usage: fope {' '.join(new)}" in captured.out and len(captured.err.strip().splitlines()) == 1


def test_an_old_name_runs_the_new_command(tmp_path, capsys):
    rc = main(["hf", "extend", "--model", str(tmp_path), "--out", str(tmp_path / "o"), "--preset", "nope"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 2 and err[0].startswith("fope: `fope hf extend` is now `fope extend`")
    assert err[1] == "fope extend: error: unknown extend preset 'nope'; choose from ['cpu', 'gpu']"


def test_other_arguments_are_left_alone():
    assert renamed(["hf", "convert", "--model", "m"]) == ["hf", "convert", "--model", "m"]
    assert renamed(["eval", "longbench"]) == ["eval", "longbench"]
    assert renamed([]) == []
