"""A sweep directory: its plan (what becomes of each job on a second run), its outcome and the
advice printed when it did not complete.
"""
