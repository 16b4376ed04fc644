"""Export a trained CFCQL policy to files that run without Ray (TorchScript and ONNX).

``rllib-cfcql export CHECKPOINT --out DIR`` (or :func:`export_policy`) writes the
*decentralised* team policy: one file serves every agent of the team, and each call
acts for a batch of agents, each from its own inputs only.

``DIR/policy.pt`` (TorchScript, ``torch.jit.load``), ``DIR/policy.onnx`` (ONNX,
e.g. ``onnxruntime.InferenceSession``) and ``DIR/policy.json`` (the interface,
shapes and provenance). Per call, ``B`` rows, one per agent acting (for a whole team
at one step, ``B = n_agents`` and ``agent_index = 0..n-1``):

Discrete tasks (mixer variant), inputs in this order:

==============  ==============  ==========================================================
``obs``         float32 [B, O]  the agent's own observation
``agent_index`` int64 [B]       which agent of the team (0..n-1)
``prev_action`` int64 [B]       its previous action, -1 at an episode's first step
``hidden``      float32 [B, H]  its recurrent state: zeros at an episode's first step, then
                                the ``hidden_out`` of its previous call (MLP agents return
                                it unchanged)
``action_mask`` float32 [B, A]  1 = action available
==============  ==============  ==========================================================

outputs ``action`` int64 [B] (the greedy available action), ``hidden_out`` float32
[B, H], ``q`` float32 [B, A] (the agent's utilities).

Continuous tasks (deterministic actors): inputs ``obs`` float32 [B, O] and
``agent_index`` int64 [B]; output ``action`` float32 [B, d] in [-1, 1] (the team's
normalised action box).

Agents never see each other's inputs: the file is the execution half of CTDE.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from rllib_cfcql.discrete.loss import NEG

EXPORT_VERSION = 1
MODULE_ID = "default_policy"


def _zeroed(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        nn.init.zeros_(p)
    return m


class ExportedDiscreteAgents(nn.Module):
    """The shared agent network of the discrete module with its input building and greedy choice."""

    def __init__(self, module: Any):
        super().__init__()
        cfg = module.cfg
        agent = copy.deepcopy(module.agent).cpu().eval()
        self.fc1, self.fc2 = agent.fc1, agent.fc2
        self.rnn = bool(agent.rnn)
        # the unused branch's layer is a zero placeholder (TorchScript compiles both branches)
        self.gru = agent.gru if self.rnn else _zeroed(nn.GRU(1, 1))
        self.fc_mid = agent.fc_mid if not self.rnn else _zeroed(nn.Linear(1, 1))
        self.hidden = int(agent.hidden)
        self.n_agents, self.n_actions = int(module.n_agents), int(module.n_actions)
        self.last_action, self.agent_id = bool(cfg["obs_last_action"]), bool(cfg["obs_agent_id"])
        self.neg = float(NEG)  # the module's fill value for unavailable actions

    def forward(self, obs: torch.Tensor, agent_index: torch.Tensor, prev_action: torch.Tensor,
                hidden: torch.Tensor, action_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        parts = [obs]
        if self.last_action:
            # one-hot of the previous action; -1 (no previous action) gives the zero row
            parts.append((prev_action[:, None] == torch.arange(self.n_actions, device=obs.device)[None]).to(obs.dtype))
        if self.agent_id:
            parts.append((agent_index[:, None] == torch.arange(self.n_agents, device=obs.device)[None]).to(obs.dtype))
        z = F.relu(self.fc1(torch.cat(parts, dim=-1)))
        if self.rnn:
            y, h = self.gru(z[:, None], hidden[None].contiguous())
            z, hidden_out = y[:, 0], h[0]
        else:
            z, hidden_out = F.relu(self.fc_mid(z)), hidden
        q = self.fc2(z)
        # keep every input of the documented interface in the graph (ONNX drops unused inputs): an
        # input this agent network does not read enters as an exact +0
        if not self.last_action:
            q = q + 0.0 * prev_action[:, None].to(q.dtype)
        if not self.agent_id:
            q = q + 0.0 * agent_index[:, None].to(q.dtype)
        action = q.masked_fill(action_mask <= 0, self.neg).argmax(-1)
        return action, hidden_out, q


class _AgentIndexedLinear(nn.Module):
    """A BatchedLinear's k weight sets, one picked per row: x [B, 1, in], k [B] -> [B, 1, out]."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.weight = nn.Parameter(layer.weight.detach().clone(), requires_grad=False)  # [k, in, out]
        self.bias = nn.Parameter(layer.bias.detach().clone(), requires_grad=False)  # [k, 1, out]

    def forward(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias[k], x, self.weight[k])


class ExportedActors(nn.Module):
    """The continuous module's per-agent (or shared) tanh actors, indexed by ``agent_index``."""

    def __init__(self, module: Any):
        super().__init__()
        actors = copy.deepcopy(module.actor).cpu().eval()
        self.shared = bool(actors.shared)
        self.n_agents = int(actors.n)
        self.hidden_layers = nn.ModuleList(_AgentIndexedLinear(lay) for lay in actors.mlp.hidden_layers)
        self.out = _AgentIndexedLinear(actors.mlp.out)

    def forward(self, obs: torch.Tensor, agent_index: torch.Tensor) -> torch.Tensor:
        x = obs
        if self.shared:
            x = torch.cat([x, (agent_index[:, None] == torch.arange(self.n_agents, device=obs.device)[None]).to(obs.dtype)], -1)
            k = torch.zeros_like(agent_index)
        else:
            k = agent_index
        h = x[:, None]  # [B, 1, in]
        for layer in self.hidden_layers:
            h = F.relu(layer(h, k))
        return torch.tanh(self.out(h, k)[:, 0])


def find_module_dir(checkpoint: str | Path) -> Path:
    """The RLModule directory inside an Algorithm checkpoint (or a Tune trial dir: its latest checkpoint)."""
    p = Path(checkpoint).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such checkpoint")
    if p.is_dir() and not (p / "learner_group").exists() and not (p / "module_state.pkl").exists():
        ckpts = sorted(p.glob("checkpoint_*"))
        if ckpts:
            p = ckpts[-1]
    for cand in (p / "learner_group" / "learner" / "rl_module" / MODULE_ID, p / MODULE_ID, p):
        if (cand / "module_state.pkl").exists() and (cand / "class_and_ctor_args.pkl").exists():
            return cand
    raise FileNotFoundError(
        f"{p}: not an RLlib checkpoint of a CFCQL algorithm (expected learner_group/learner/rl_module/{MODULE_ID}/)"
    )


def load_module(checkpoint: str | Path):
    """The trained RLModule of a checkpoint, on the CPU (no Ray instance is started)."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(str(find_module_dir(checkpoint)))
    return module.cpu().eval()


def exportable(module: Any) -> nn.Module:
    """The Ray-free torch module that acts like ``module``'s greedy decentralised policy."""
    if hasattr(module, "actor"):
        return ExportedActors(module).eval().requires_grad_(False)
    return ExportedDiscreteAgents(module).eval().requires_grad_(False)


def example_inputs(net: nn.Module, batch: int = 2) -> Dict[str, torch.Tensor]:
    if isinstance(net, ExportedActors):
        obs_dim = net.hidden_layers[0].weight.shape[1] - (net.n_agents if net.shared else 0)
        return {"obs": torch.zeros(batch, obs_dim), "agent_index": torch.arange(batch) % net.n_agents}
    obs_dim = net.fc1.in_features - (net.n_actions if net.last_action else 0) - (net.n_agents if net.agent_id else 0)
    return {
        "obs": torch.zeros(batch, obs_dim),
        "agent_index": torch.arange(batch) % net.n_agents,
        "prev_action": torch.full((batch,), -1, dtype=torch.int64),
        "hidden": torch.zeros(batch, net.hidden),
        "action_mask": torch.ones(batch, net.n_actions),
    }


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def weights_digest(net: nn.Module) -> str:
    """sha256 over the exported network's tensors (names, shapes and bytes): equal for equal weights.
    (A TorchScript archive also holds a random serialization id, so its bytes differ between saves.)"""
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return "sha256:" + h.hexdigest()


def export_policy(checkpoint: str | Path, out: str | Path, onnx: bool = True, opset: int = 17) -> Dict[str, Any]:
    """Writes ``policy.pt`` (TorchScript), ``policy.onnx`` (unless ``onnx=False``) and ``policy.json``
    to ``out``; returns the metadata written to ``policy.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    module_dir = find_module_dir(checkpoint)
    module = load_module(checkpoint)
    net = exportable(module)
    ex = example_inputs(net)
    names = list(ex)
    continuous = isinstance(net, ExportedActors)
    outputs = ["action"] if continuous else ["action", "hidden_out", "q"]
    with torch.no_grad():
        scripted = torch.jit.script(net)
    ts_path = out / "policy.pt"
    scripted.save(str(ts_path))
    files = {"torchscript": ts_path.name}
    onnx_error = None
    if onnx:
        onnx_path = out / "policy.onnx"
        try:
            with torch.no_grad():
                torch.onnx.export(net, tuple(ex.values()), str(onnx_path), input_names=names, output_names=outputs,
                                  dynamic_axes={k: {0: "batch"} for k in names + outputs}, opset_version=opset,
                                  dynamo=False)
            files["onnx"] = onnx_path.name
        except Exception as e:  # noqa: BLE001 - an op without an ONNX form: TorchScript still serves
            onnx_error = f"{type(e).__name__}: {e}"
            if onnx_path.exists():
                onnx_path.unlink()
    cfg = getattr(module, "cfg", {})
    n = int(net.n_agents)
    obs_dim = int(ex["obs"].shape[1])
    if continuous:
        act_dim = int(net.out.weight.shape[-1])
        interface = {
            "inputs": {"obs": ["float32", ["B", obs_dim]], "agent_index": ["int64", ["B"]]},
            "outputs": {"action": ["float32", ["B", act_dim]]},
        }
        shapes = {"n_agents": n, "obs_dim": obs_dim, "action_dim": act_dim, "shared_actor": net.shared}
    else:
        A, H = int(net.n_actions), int(net.hidden)
        interface = {
            "inputs": {"obs": ["float32", ["B", obs_dim]], "agent_index": ["int64", ["B"]],
                       "prev_action": ["int64", ["B"]], "hidden": ["float32", ["B", H]],
                       "action_mask": ["float32", ["B", A]]},
            "outputs": {"action": ["int64", ["B"]], "hidden_out": ["float32", ["B", H]], "q": ["float32", ["B", A]]},
        }
        shapes = {"n_agents": n, "obs_dim": obs_dim, "n_actions": A, "hidden": H, "rnn": net.rnn,
                  "obs_last_action": net.last_action, "obs_agent_id": net.agent_id}
    meta = {
        "export_version": EXPORT_VERSION,
        "kind": "continuous" if continuous else "discrete",
        **shapes,
        **interface,
        "conventions": ("one row per acting agent; prev_action = -1 and hidden = zeros at an episode's first step"
                        if not continuous else "one row per acting agent; actions in [-1, 1]"),
        "files": {k: {"name": v, "sha256": _sha256(out / v)} for k, v in files.items()},
        "weights_sha256": weights_digest(net),
        "onnx_error": onnx_error,
        "source_checkpoint": str(module_dir),
        "model_config": {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool)) or v is None},
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with open(out / "policy.json", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    """``rllib-cfcql export CHECKPOINT --out DIR``."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="rllib-cfcql export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="an Algorithm checkpoint directory (or a Tune trial directory: its latest checkpoint)")
    ap.add_argument("--out", required=True, help="output directory for policy.pt, policy.onnx, policy.json")
    ap.add_argument("--no-onnx", action="store_true", help="write TorchScript only")
    ap.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    a = ap.parse_args(argv)
    try:
        meta = export_policy(a.checkpoint, a.out, onnx=not a.no_onnx, opset=a.opset)
    except FileNotFoundError as e:
        print(f"rllib-cfcql export: error: {e}", file=sys.stderr)
        return 2
    names = ", ".join(f["name"] for f in meta["files"].values())
    print(f"exported the {meta['kind']} policy of {meta['source_checkpoint']} ({meta['n_agents']} agents) to "
          f"{a.out}: {names}, policy.json")
    if meta["onnx_error"]:
        print(f"  no ONNX file: {meta['onnx_error']}")
    return 0
