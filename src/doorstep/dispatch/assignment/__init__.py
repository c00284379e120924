"""Automatic dispatch: who gets which job, decided from the open jobs and the carriers on duty. No I/O."""
