"""``python -m vmsnap.volatility <Volatility arguments>``: Volatility 3's ``vol`` with
vmsnap's layer and stacker registered, so any file vmsnap stacks to guest-physical memory
is a memory image (``python -m vmsnap.volatility -f vm.vmss banners.Banners``)."""

import sys

import vmsnap.volatility  # noqa: F401 - registers VmsnapStacker with the automagic


def main() -> None:
    from volatility3 import cli

    sys.argv[0] = "vol (vmsnap)"
    cli.main()


if __name__ == "__main__":
    main()
