#!/usr/bin/env python
"""Train the offline WordPiece tokenizer on the training split: ``python setup_tokenizer.py --help``."""

from mlmclm.cli import setup_tokenizer_main

if __name__ == "__main__":
    setup_tokenizer_main()
