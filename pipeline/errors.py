"""The errors a stage turns into one line naming the file, key or row at fault (``stages/_common.run``)."""


def did_you_mean(word: str, choices, template: str = "{}", cutoff: float = 0.6) -> str:
    """`` (did you mean 'X'?)`` with X = ``template`` filled with the choice closest to ``word``, or ""."""
    import difflib

    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {template.format(close[0])!r}?)" if close else ""


class PipelineError(ValueError):
    """Input the pipeline refuses: a bad file, param, model or number. The message names it."""


class BadInputError(PipelineError):
    """A dataset problem (file, folder, domain / class cell) or a data param."""


class ParamsError(PipelineError):
    """``params.yaml`` refused; the message names the key."""


class ModelLoadError(PipelineError):
    """The model named by ``model.name`` cannot be loaded."""


class NonFiniteError(PipelineError):
    """A store holds a NaN / inf embedding; the message names the store and the row."""
