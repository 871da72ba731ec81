# bench/lib.sh: helpers the benchmark scripts share (sourced, not run).

# ratio A B: A/B as "1.23x", or n/a when either is not a number.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "n/a"; else printf "%.2fx", a / b }'; }

# median: the median of the numbers on stdin (one per line), empty when there are none.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# write_section REPORT LETTER FILE: puts FILE's text in REPORT as section "## (LETTER) ...":
# replaces that section (from its heading to the next "## " heading, its "###" subsections
# with it) when REPORT has it, appends it otherwise.
write_section() {
    local report=$1 letter=$2 file=$3
    if [ -f "$report" ] && grep -q "^## ($letter) " "$report"; then
        awk -v f="$file" -v h="## ($letter) " '
            index($0, h) == 1 { while ((getline l < f) > 0) print l; skip = 1; next }
            skip && /^## / { skip = 0; print "" }
            !skip' "$report" >"$report.new" && mv "$report.new" "$report"
    else
        { echo; cat "$file"; } >>"$report"
    fi
}
