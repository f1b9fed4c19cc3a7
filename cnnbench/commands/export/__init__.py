"""`cnnbench export`: a trained model as one ONNX or TorchScript file, its classes and input
preprocessing in the file's metadata.

Modules: choices (the format names and their suffixes, torch-free), portable (the model made
expressible in ONNX), formats (the two files and their metadata), command (the subcommand).
Nothing is imported here: torch and onnx load only once the command line is checked.
"""
