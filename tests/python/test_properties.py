"""Properties: the Python package and the command parse every value the same way, because
they share one parser (config/value.cpp). Random texts for a few settings must be accepted or
refused alike, and what is accepted must choose the same GPUs."""

import json
import subprocess

from hypothesis import HealthCheck, given, settings, strategies as st

import with_gpu
from conftest import BIN

TEXT = st.text(alphabet="0123456789.GMKiBgmb% -_x", min_size=0, max_size=8)
CASES = st.sampled_from(["min_memory", "max_util", "timeout", "count", "max_temp", "gpus"])


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=CASES, text=TEXT)
def test_the_package_and_the_command_agree_on_every_value(machine, name, text):
    flag = "--gpu" if name == "gpus" else "--" + name.replace("_", "-")
    if name == "timeout":
        # --timeout is for running a command; compare its parse through --show-config.
        cli = subprocess.run([BIN, "--show-config", f"{flag}={text}"], capture_output=True,
                             text=True)
    else:
        cli = subprocess.run([BIN, "--dry-run", "--json", f"{flag}={text}"],
                             capture_output=True, text=True)
    try:
        if name == "timeout":
            with_gpu.would_choose(timeout=text)
            ours = "accepted"
        else:
            decision = with_gpu.would_choose(**{name: text})
            ours = (decision["outcome"], decision["chosen"])
    except with_gpu.UsageError:
        ours = "usage"
    if cli.returncode == 2:
        assert ours == "usage", (name, text, cli.stderr)
    elif name == "timeout":
        assert ours == "accepted", (name, text, cli.stdout)
    else:
        # 0 (chosen), 75 (none now) or 125 (never): the command prints the same decision.
        theirs = json.loads(cli.stdout)
        assert ours == (theirs["outcome"], theirs["chosen"]), (name, text)
