"""One module or folder per subcommand, named as the user types it (`cnnbench train`, `eval`,
`compare`, `data`, `predict`, `export`, `models`, completion). The top tier: imports point down.
"""
