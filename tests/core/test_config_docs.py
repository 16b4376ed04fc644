"""Every CFCQL setting is documented once, in ``CFCQLConfig.training``'s Args, with its real default."""

import ast
import inspect
import re

from rllib_cfcql.core.config import CFCQLConfig


def _args_entries():
    doc = inspect.getdoc(CFCQLConfig.training)
    args = doc.split("Args:\n", 1)[1].split("\n\nReturns:", 1)[0]
    entries, name = {}, None
    for line in args.splitlines():
        m = re.match(r"^    (\w+): (.*)$", line)
        if m:
            name = m.group(1)
            entries[name] = m.group(2)
        elif name:
            entries[name] += " " + line.strip()
    return entries


def test_every_training_argument_is_documented_with_its_default():
    params = [p for p in inspect.signature(CFCQLConfig.training).parameters if p not in ("self", "kwargs")]
    entries = _args_entries()
    assert sorted(entries) == sorted(params), set(entries) ^ set(params)
    config = CFCQLConfig()
    for name, text in entries.items():
        m = re.search(r"\[([^\[\]]+)\]\.?$", text)
        assert m, f"{name}: no [default] at the end of its doc"
        documented = ast.literal_eval(m.group(1))
        assert documented == getattr(config, name), f"{name}: doc says {documented!r}, default is {getattr(config, name)!r}"
