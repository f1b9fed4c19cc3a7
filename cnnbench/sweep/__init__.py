"""A sweep directory: its manifest (the record of its jobs), its plan (what becomes of each job
on a second run), its outcome and the advice printed when it did not complete.
"""
