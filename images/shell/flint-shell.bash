# Flint shell integration for interactive bash: OSC 133 marks that tell the guest agent what
# the shell is doing (a prompt, a command line being typed, a command running).
#
#   ESC ] 133 ; D ; N BEL    command end, exit status N (start of PS1)
#   ESC ] 133 ; A BEL        prompt start               (start of PS1, after D)
#   ESC ] 133 ; B BEL        input start, end of prompt (end of PS1)
#   ESC ] 133 ; C BEL        command start              (PS0, printed once a line is read)
#
# The marks live in PS1 and PS0 themselves, so a `PROMPT_COMMAND=...` of the user's does not
# lose them: bash gives PS1 the `$?` of the line just run, whatever PROMPT_COMMAND ran after
# it. A `PS1=` later on (~/.bashrc) gets them back at the next prompt: `__flint_marks` runs
# from PROMPT_COMMAND as an element of its own (bash 5.1 and later run every element), which
# a plain `PROMPT_COMMAND=...` (element 0) leaves alone.
#
# The images install it as /etc/profile.d/flint-shell.sh (terminals run `bash -l`); the
# agent's tests source the same file (`bash --rcfile images/shell/flint-shell.bash -i`).
# Sourcing it twice changes nothing. Not bash, or not interactive: it does nothing.

if [ -n "${BASH_VERSION-}" ] && [[ $- == *i* ]]; then
    __flint_marks() {
        local __flint_status=$?
        if [[ $PS1 != *'133;B'* ]]; then
            PS1='\[\e]133;D;$?\a\e]133;A\a\]'"$PS1"'\[\e]133;B\a\]'
        fi
        if [[ ${PS0-} != *'133;C'* ]]; then
            PS0="${PS0-}"'\e]133;C\a'
        fi
        return "$__flint_status"
    }
    __flint_marks
    if [[ " ${PROMPT_COMMAND[*]-} " != *__flint_marks* ]]; then
        if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))); then
            PROMPT_COMMAND[99]=__flint_marks
        else
            PROMPT_COMMAND="__flint_marks${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
        fi
    fi
fi
