"""`cnnbench data`: what a dataset is before a model is trained on it.

- `overview`: the data loaded and split as a run would, its sizes, classes, counts and
  normalization, as one JSON-ready summary;
- `folder_report`: for `dataset=imagefolder`, the files the loader leaves out (and why) and the
  sizes of the original images;
- `charts` and `samples`: the pictures (images per class and split; sample images per class);
- `show`: the tables on the terminal;
- `command`: the options, and the files written.
"""
