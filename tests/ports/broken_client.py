"""A deliberately broken port: the reference client with planted porting bugs from ``vsaopt spec mutate``'s catalogue.

Each planted bug is installed for its own family only; every other op answers
as the reference does.  ``vsaopt conform`` must find each one and shrink it.
"""

import sys
from contextlib import ExitStack
from pathlib import Path

from vsaopt.backend import get_backend
from vsaopt.golden.mutations import applied, catalogue

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_client import serve  # noqa: E402

#: family -> the planted bug (a mutation of the catalogue), one per family.
PLANTED = {
    "rng": "rng.seed_bound_2_to_63",  # check: seeds from 2**63 rejected (a signed 64-bit seed)
    "reductions": "reductions.sum_block_fold_sequential",  # order: block sums added one after another
    "ternary": "ternary.stochastic_le",  # boundary: u == p keeps the trit
    "pack": "pack.pack_2bit_pad_ones",  # layout: pad positions hold code 1
    "vsa": "vsa.bundle_tie_is_plus_one",  # boundary: a tied majority gives +1
    "map": "map.hard_quantize_signbit",  # boundary: -0.0 quantizes to -1
}


def main():
    reference = get_backend("numpy")
    by_name = {m.name: m for m in catalogue(sorted({n.split(".")[0] for n in PLANTED.values()}))}
    with ExitStack() as stack:
        backends = {family: stack.enter_context(applied(by_name[name])) for family, name in PLANTED.items()}
        serve(lambda family: backends.get(family, reference))


if __name__ == "__main__":
    main()
