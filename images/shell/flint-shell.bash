# Flint shell integration for interactive bash: OSC 133 marks that tell the guest agent what
# the shell is doing (a prompt, a command line being typed, a command running).
#
#   ESC ] 133 ; A BEL        prompt start               (start of PS1)
#   ESC ] 133 ; B BEL        input start, end of prompt (end of PS1)
#   ESC ] 133 ; C BEL        command start              (PS0, printed once a line is read)
#   ESC ] 133 ; D ; N BEL    command end, exit status N (first thing before each prompt)
#
# The images install it as /etc/profile.d/flint-shell.sh (terminals run `bash -l`); the
# agent's tests source the same file (`bash --rcfile images/shell/flint-shell.bash -i`).
# Sourcing it twice changes nothing, and a `PS1=` later on (~/.bashrc) gets the marks back
# at the next prompt. Not bash, or not interactive: it does nothing.

if [ -n "${BASH_VERSION-}" ] && [[ $- == *i* ]]; then
    __flint_prompt() {
        # $? of the line just run: the first thing read here, passed on unchanged below.
        local __flint_status=$?
        printf '\e]133;D;%s\a' "$__flint_status"
        if [[ $PS1 != *'133;B'* ]]; then
            PS1='\[\e]133;A\a\]'"$PS1"'\[\e]133;B\a\]'
        fi
        if [[ ${PS0-} != *'133;C'* ]]; then
            PS0="${PS0-}"'\e]133;C\a'
        fi
        return "$__flint_status"
    }
    if [[ ${PROMPT_COMMAND-} != *__flint_prompt* ]]; then
        PROMPT_COMMAND="__flint_prompt${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
    fi
fi
