#!/usr/bin/env zsh
# Prints what zsh's completion system really offers for each command line given, one output
# line per command line (the matches, sorted and unique, separated by spaces), with
# COMPLETION_FILE as the completion for with-gpu. Used by test_completions.sh.
#
#   zsh_offers.zsh COMPLETION_FILE WORK_DIR LINE...
#
# Completion only runs inside the line editor of an interactive shell, so this starts one
# (zsh -f -i, no startup files) on a pseudo-terminal with the zpty module, runs compinit with
# COMPLETION_FILE first in fpath, and binds a completion widget to Ctrl-T that records every
# match that the completion functions add (a compadd wrapper that asks the real compadd which
# of its words match, with -O) in WORK_DIR/matches. Each LINE is typed, followed by Ctrl-T; the
# widget then writes an end marker, and Ctrl-U clears the line for the next one.
emulate -R zsh
zmodload zsh/zpty || { print -u2 "zsh_offers: the zsh/zpty module is missing"; exit 2 }

(( $# >= 2 )) || { print -u2 "usage: $0 COMPLETION_FILE WORK_DIR LINE..."; exit 2 }
completion_file=$1 work=$2
shift 2
mkdir -p $work/fpath || exit 2
cp $completion_file $work/fpath/_with-gpu || exit 2
matches_file=$work/matches
: >$matches_file
timeout_s=120 # per line; compinit alone can take 20 s on a loaded machine

zpty shell zsh -f -i
type_text() { zpty -w shell "$1" }
type_text "PS1='' RPS1=''; fpath=(${(q)work}/fpath \$fpath)"
type_text "autoload -Uz compinit; compinit -u -d ${(q)work}/zcompdump"
# A compadd that also records the words it adds. Calls that only ask (-O, -A, -D before the
# words) are passed on untouched; they are how _arguments and _describe filter.
type_text 'compadd() {
  local arg
  for arg; do
    [[ $arg == (-|--) ]] && break
    [[ $arg == -[OAD]* ]] && { builtin compadd "$@"; return }
  done
  local -a added
  builtin compadd -O added "$@"
  (( $#added )) && print -rl -- $added >>'"${(q)matches_file}"'
  builtin compadd "$@"
}'
# Completes as Tab would, then inserts and lists nothing (the line is cleared next anyway).
type_text '_with_gpu_capture() {
  _main_complete
  compstate[insert]="" compstate[list]=""
  print -r -- "<<done>>" >>'"${(q)matches_file}"'
}'
type_text 'zle -C with-gpu-capture complete-word _with_gpu_capture; bindkey "^T" with-gpu-capture'

result=0
for line; do
  zpty -w -n shell "$line"$'\C-t'
  deadline=$((SECONDS + timeout_s))
  until grep -qx '<<done>>' $matches_file; do
    # Drain the terminal so that the shell never blocks writing to it.
    while zpty -rt shell chunk 2>/dev/null; do :; done
    if ((SECONDS >= deadline)); then
      print -u2 "zsh_offers: no completion for '$line' within $timeout_s s"
      result=1
      break 2
    fi
    sleep 0.05
  done
  offered=(${(f)"$(grep -vx '<<done>>' $matches_file)"})
  print -r -- ${(j: :)${(ou)offered}}
  : >$matches_file
  zpty -w -n shell $'\C-u'
done
zpty -d shell
exit $result
