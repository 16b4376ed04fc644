"""Can behaviour cloning reach the all-medium team on the Equal_Line n-scaling data? (docs/DATASETS_DESIGN.md §4)

    python benchmarks/equal_line_bc_probe.py --n 16 --hidden 64
    python benchmarks/equal_line_bc_probe.py --n 16 --hidden 256
    python benchmarks/equal_line_bc_probe.py --n 16 --hidden 64 --oracle

A plain torch BC on the sweep's dataset (``benchmarks/data/equal_line_n<N>_medium_expert0.3``, made by
``equal_line_scaling.py``): an MLP on each agent's observation and one-hot id, cross-entropy on the logged
actions, greedy in the live env. ``--oracle`` adds the agent's offset from its own medium slot as an
input, to separate capacity from the data's mode structure. Prints the evaluation return (all-medium:
5, all-expert: 10) and, for three episodes, each agent's final offset from its medium slot.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn as nn

from rllib_cfcql import keys as K
from rllib_cfcql.envs.equal_line import EqualLineEnv

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--oracle", action="store_true")
    ap.add_argument("--data-root", default=str(HERE / "data"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = a.n
    files = sorted((Path(a.data_root) / f"equal_line_n{n}_medium_expert0.3").glob("*.parquet"))
    if not files:
        raise SystemExit(f"no data under {a.data_root}/equal_line_n{n}_medium_expert0.3: "
                         f"make it with python benchmarks/equal_line_scaling.py --n {n} --methods bc --seeds 0")
    table = pa.concat_tables([pq.read_table(f) for f in files]).to_pydict()
    obs = torch.tensor(np.array(table[K.OBS], np.float32)).view(-1, n, n + 1)
    act = torch.tensor(np.array(table[K.ACTIONS])).view(-1, n)
    env = EqualLineEnv({"n_agents": n})
    slots = torch.linspace(0, env.line_length / 2, n) / env.line_length  # medium slots, in observation units

    def feat(o):
        x = [o, torch.eye(n).expand(o.shape[0], n, n)]
        if a.oracle:
            x.append((o[..., :1] - slots[None, :, None]) * 10)
        return torch.cat(x, -1)

    d = feat(obs[:1]).shape[-1]
    net = nn.Sequential(nn.Linear(d, a.hidden), nn.ReLU(), nn.Linear(a.hidden, a.hidden), nn.ReLU(), nn.Linear(a.hidden, 11))
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    @torch.no_grad()
    def episode(seed):
        o, _ = env.reset(seed=seed)
        ret, done = 0.0, False
        while not done:
            a_ = net(feat(torch.as_tensor(o[K.OBS])[None])).argmax(-1)[0].numpy()
            o, r, te, tr, _ = env.step(a_)
            ret, done = ret + r, te or tr
        return ret

    t0 = time.time()
    for s in range(1, a.steps + 1):
        idx = torch.randint(0, obs.shape[0], (256,))
        loss = nn.functional.cross_entropy(net(feat(obs[idx])).reshape(-1, 11), act[idx].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s % (a.steps // 4) == 0:
            ev = np.mean([episode(10_000 + k) for k in range(32)])
            print(f"n={n} hidden {a.hidden}{' oracle' if a.oracle else ''} step {s}: loss {loss.item():.3f} "
                  f"eval return {ev:.2f} ({time.time() - t0:.0f} s)", flush=True)
    for k in range(3):
        episode(10_000 + k)
        off = env.pos - np.linspace(0, env.line_length / 2, n)
        print(f"episode {k}: final offset from the medium slot per agent", np.round(off, 2).tolist())


if __name__ == "__main__":
    main()
