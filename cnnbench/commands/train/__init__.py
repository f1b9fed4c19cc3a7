"""`cnnbench train`: the Hydra application and the checks made before Hydra starts.
"""
