"""The error every bad dataset input raises."""






class DataError(ValueError):
    """A dataset input is unusable; the message names the file and the problem."""
