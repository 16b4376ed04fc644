"""``rllib-cfcql data {collect,convert,inspect,validate}``.

collect   roll out a behaviour policy in a team task, write Parquet/JSON + card.json;
          --quality random|medium|medium-replay|expert|mixed chooses the behaviour
          (rllib_cfcql.behaviour_policies.qualities), --policy overrides it
convert   import another project's dataset files or folders (--from authors-hdf5 |
          omar-npy | og-marl-vault, options via --importer-options JSON) into a
          team dataset + card.json; exit 2 with a precise message on bad input
inspect   print a dataset's card and summary table
validate  check schema, shapes against the task, value ranges, NaN/inf, masks,
          episode boundaries and the content hash; exit 1 with a precise message
          on the first problem
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rllib_cfcql.cli.experiment_file import ConfigError, parse_json_option
from rllib_cfcql.data.collect import collect
from rllib_cfcql.data.importers import IMPORTERS, convert_dataset
from rllib_cfcql.data.schema import DatasetError
from rllib_cfcql.data.validate import load_card, validate_dataset
from rllib_cfcql.data.writer import FORMATS, data_files
from rllib_cfcql.envs import TASKS


def _cmd_collect(a) -> int:
    env_config = parse_json_option(a.env_config, "--env-config") if a.env_config else {}
    policy, quality = a.policy, a.quality
    if policy is None and quality is None:  # neither: the historical default behaviour
        policy, quality = "mixed_agents:0.5", "custom"
    card = collect(task=a.task, env_config=env_config, policy=policy, episodes=a.episodes, steps=a.steps,
                   seed=a.seed, out_dir=a.out, fmt=a.format, quality=quality or "custom", force=a.force,
                   progress=not a.quiet, reference_episodes=a.reference_episodes, source=a.behaviours)
    print(f"quality {card['quality']}: {card['behaviour_policy']}")
    print(f"wrote {a.out}: {card['episodes']} episodes, {card['transitions']} transitions, "
          f"return {card['return']['mean']:.3f} ± {card['return']['std']:.3f} "
          f"(random {card['reference_returns']['random']:.3f}, expert {card['reference_returns']['expert']:.3f})")
    return 0


def _cmd_convert(a) -> int:
    env_config = parse_json_option(a.env_config, "--env-config") if a.env_config else {}
    refs = parse_json_option(a.reference_returns, "--reference-returns") if a.reference_returns else None
    options = parse_json_option(a.importer_options, "--importer-options") if a.importer_options else None
    task = None if a.task == "none" else a.task
    card = convert_dataset(a.kind, a.inputs, a.out, task=task, env_config=env_config, fmt=a.format,
                           force=a.force, reference_returns=refs, importer_options=options)
    r = card.get("reference_returns")
    refs_text = f"random {r['random']:.3f}, expert {r['expert']:.3f}" if r else "no reference returns: dataset-only"
    print(f"wrote {a.out}: {card['episodes']} episodes, {card['transitions']} transitions "
          f"from {len(a.inputs)} {a.kind} file(s), return {card['return']['mean']:.3f} ± {card['return']['std']:.3f} "
          f"({refs_text})")
    return 0


def _cmd_inspect(a) -> int:
    d = Path(a.path)
    card = load_card(d)
    size = sum(f.stat().st_size for f in data_files(d))
    refs = card.get("reference_returns")
    ret = card.get("return") or {}
    rows = [
        ("task", f"{card.get('task') or '(none: dataset-only)'} {json.dumps(card.get('env_config', {}))}"),
        ("shapes", json.dumps(card.get("spec"))),
        ("quality / behaviour", f"{card.get('quality')} / {card.get('behaviour_policy')}"),
        ("episodes / transitions", f"{card.get('episodes')} / {card.get('transitions')}"),
    ]
    if "win_rate" in card:
        rows.append(("battles won", f"{card['win_rate']:.1%}"))
    if ret:
        rows.append(("return mean ± std [min, max]",
                     f"{ret['mean']:.3f} ± {ret['std']:.3f} [{ret['min']:.3f}, {ret['max']:.3f}]"))
    if refs:
        rows.append(("reference returns", f"random {refs['random']:.3f}, expert {refs['expert']:.3f}"))
        if ret:
            rows.append(("normalised score of the data",
                         f"{100 * (ret['mean'] - refs['random']) / (refs['expert'] - refs['random']):.1f}"))
    else:
        rows.append(("reference returns", "none (no normalised score)"))
    rows += [
        ("files", f"{', '.join(card.get('files', []))} ({size / 1e6:.2f} MB, {card.get('format')})"),
        ("content hash", card.get("content_hash")),
        ("seed / collected in", f"{card.get('seed')} / {card.get('collection_seconds')} s"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    return 0


def _cmd_validate(a) -> int:
    try:
        card, ep = validate_dataset(a.path, check_hash=not a.no_hash)
    except DatasetError as e:
        print(f"INVALID: {e}", file=sys.stderr)
        return 1
    print(f"OK: {a.path}: {ep.num_episodes} episodes, {ep.num_transitions} transitions, task {card.get('task') or '(dataset-only)'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rllib-cfcql data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="roll out a behaviour policy and write a dataset + card")
    c.add_argument("--task", required=True, choices=sorted(TASKS))
    c.add_argument("--env-config", default="", help="JSON object of env_config, e.g. '{\"n_agents\": 4}'")
    c.add_argument("--policy", default=None,
                   help="behaviour policy spec, overrides --quality: random | expert | eps_expert:<eps> | "
                        "mixed_agents:<p> | medium_expert:<p> | slots:<q> | hesitant:<q> | random_mix:<eps>:<spec> | "
                        "checkpoint:<path>[@<noise std | eps> | @sample] "
                        "(default without --quality: mixed_agents:0.5)")
    c.add_argument("--quality", default=None,
                   help="random | medium | medium-replay | expert | mixed: chooses the behaviour (the task's "
                        "trained PPO policies where it has them, else scripted; see rllib_cfcql.behaviour_policies.qualities) "
                        "and is stored in the card; with --policy it is only the card's label")
    c.add_argument("--behaviours", choices=("auto", "trained", "scripted"), default="auto",
                   help="which behaviours --quality and the expert reference use: auto (trained where the task "
                        "has them), trained (error without them) or scripted")
    n = c.add_mutually_exclusive_group(required=True)
    n.add_argument("--episodes", type=int, help="number of episodes")
    n.add_argument("--steps", type=int, help="collect whole episodes until at least this many transitions")
    c.add_argument("--reference-episodes", type=int, default=200,
                   help="episodes of the random and expert policies measured for the card's reference returns")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--format", choices=FORMATS, default="parquet")
    c.add_argument("--out", required=True)
    c.add_argument("--force", action="store_true", help="overwrite a non-empty output directory")
    c.add_argument("--quiet", action="store_true")
    cv = sub.add_parser("convert", help="import other projects' dataset files as a team dataset + card")
    cv.add_argument("--from", dest="kind", required=True, choices=sorted(IMPORTERS),
                    help="source format: authors-hdf5 = the CFCQL authors' PyMARL-layout HDF5 files; "
                         "omar-npy = OMAR / CFCQL-continuous seed_<k>_data folders of per-agent .npy files; "
                         "og-marl-vault = an OG-MARL flashbax vault folder (extra: rllib-cfcql[og-marl])")
    cv.add_argument("--task", required=True, choices=sorted(TASKS) + ["none"],
                    help="the task the data was recorded on; none (og-marl-vault only): a dataset-only task with "
                         "the vault's own shapes, e.g. SMAC vaults recorded on StarCraft II (train with env: null)")
    cv.add_argument("--env-config", default="", help="JSON object of env_config, e.g. '{\"n_agents\": 4}'")
    cv.add_argument("--format", choices=FORMATS, default="parquet")
    cv.add_argument("--reference-returns", default="",
                    help='JSON \'{"random": R, "expert": R}\' for the card (default: measure 50 episodes of each)')
    cv.add_argument("--importer-options", default="",
                    help='JSON object of importer options, e.g. omar-npy \'{"episode_length": 25, "seed": 0, '
                         '"done_at_limit": "truncated"}\', og-marl-vault \'{"vault_uid": "Good"}\'')
    cv.add_argument("--out", required=True)
    cv.add_argument("--force", action="store_true", help="overwrite a non-empty output directory")
    cv.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="input file(s) or folder(s); several are concatenated in order")
    i = sub.add_parser("inspect", help="print a dataset's card as a table")
    i.add_argument("path")
    v = sub.add_parser("validate", help="validate a dataset directory")
    v.add_argument("path")
    v.add_argument("--no-hash", action="store_true", help="skip the content-hash check")
    a = ap.parse_args(argv)
    try:
        return {"collect": _cmd_collect, "convert": _cmd_convert, "inspect": _cmd_inspect,
                "validate": _cmd_validate}[a.cmd](a)
    except (DatasetError, ConfigError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
