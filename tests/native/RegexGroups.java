// Prints what java.util.regex (Athena's RegexSerDe) captures: args[0] names a file holding the regex; each stdin
// line gets one output line, "NOMATCH" when Matcher.matches() fails, else the groups joined by tabs, NULL ones
// as \N. Run with the single-file source launcher: java RegexGroups.java REGEX_FILE < lines
// (tests/test_raw_table.py compares its output with Python's re).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class RegexGroups {
    public static void main(String[] args) throws Exception {
        Pattern pattern = Pattern.compile(Files.readString(Path.of(args[0]), StandardCharsets.UTF_8));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            Matcher m = pattern.matcher(line);
            if (!m.matches()) {
                out.append("NOMATCH\n");
                continue;
            }
            for (int g = 1; g <= m.groupCount(); g++) {
                if (g > 1) out.append('\t');
                String value = m.group(g);
                out.append(value == null ? "\\N" : value);
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
