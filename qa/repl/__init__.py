"""The interactive session: `qa` with no arguments, or `qa repl --index DIR`.

The prompt appears at once; the index and the model load in a background thread, and a question
typed before they are ready waits for them (Ctrl-C gives up waiting). Questions run in a worker
thread so that Ctrl-C abandons a running search without leaving the session. Lines starting with
':' are commands (:help lists them). Output goes through prompt_toolkit, so text printed while
the prompt is shown (the "ready" line, for one) lands above it instead of through it.

:class:`Repl` takes the pieces a test needs to replace: a zero-argument factory returning a
:class:`~qa.ranking.search.Retriever`, a prompt_toolkit input and output, and the history file.

    session.py      the prompt loop, background loading, interruptible questions, output
    commands.py     the ':' commands: their table (for :help and completion) and what they do
    completion.py   Tab completion of commands and their arguments
"""

from .commands import BY_NAME, COMMANDS, Command
from .completion import ReplCompleter
from .session import WELCOME, Repl, default_history_path, run_repl

__all__ = ["BY_NAME", "COMMANDS", "WELCOME", "Command", "Repl", "ReplCompleter", "default_history_path",
           "run_repl"]
