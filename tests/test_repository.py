"""The repository stays as the README says: CI runs its test command, and the code keeps its line length."""

import re

from helpers import REPO


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    blocks = _bash_blocks(readme)
    test_commands = [block.strip() for block in blocks if "pytest" in block]
    assert test_commands, "the README gives no test command"
    assert test_commands[0] in ci_lines, f"CI does not run the README's test command {test_commands[0]!r}"


def test_readme_setup_command_installs_what_ci_installs():
    readme = (REPO / "README.md").read_text()
    setup = next(block for block in _bash_blocks(readme) if "requirements.txt" in block)
    ci = (REPO / ".ci" / "run").read_text()
    for step in ("python3 -m venv .venv", "pip install -r requirements.txt",
                 "pip install --no-deps -e . -r requirements-no-deps.txt"):
        assert step in setup, f"the README's set-up command lacks {step!r}"
    for step in ("-r requirements.txt", "--no-deps -e . -r requirements-no-deps.txt"):
        assert step in ci, f".ci/run lacks {step!r}"


MAX_LINE_LENGTH = 110


def test_python_lines_fit_the_line_length():
    files = sorted((REPO / "tf_stylegan").rglob("*.py")) + sorted((REPO / "tests").rglob("*.py"))
    assert len(files) > 50
    long_lines = [f"{path.relative_to(REPO)}:{number} ({len(line)})"
                  for path in files for number, line in enumerate(path.read_text().splitlines(), 1)
                  if len(line) > MAX_LINE_LENGTH]
    assert not long_lines, f"lines over {MAX_LINE_LENGTH} characters: {long_lines}"
