#!/usr/bin/env python
"""Train and compare MLM vs CLM across attention mechanisms: ``python train.py --help``."""

from mlmclm.cli import train_main

if __name__ == "__main__":
    train_main()
