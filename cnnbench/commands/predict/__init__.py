"""`cnnbench predict`: a trained model's classes for the user's own pictures.

Modules: inputs (finding and converting the pictures), sources (a checkpoint or an ONNX file
that computes the logits), results (top-k, the table, predictions.csv), grid
(predictions.png), command (the subcommand). Nothing is imported here.
"""
