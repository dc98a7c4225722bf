// Prints whether java.util.regex finds each pattern in each text, the way Trino's regexp_like (Java pattern
// syntax) searches: args[0] names a file of patterns, one a line; each stdin line is a text, hex-encoded UTF-8
// (texts may hold newlines); each output line has one '0' or '1' per pattern. Run with the single-file source
// launcher: java RegexFind.java PATTERNS_FILE < texts (tests/test_rollup_routes.py compares it with Python's re).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;

public class RegexFind {
    public static void main(String[] args) throws Exception {
        List<Pattern> patterns = Files.readAllLines(Path.of(args[0]), StandardCharsets.UTF_8).stream()
            .filter(line -> !line.isEmpty()).map(Pattern::compile).toList();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String text = new String(HexFormat.of().parseHex(line), StandardCharsets.UTF_8);
            for (Pattern pattern : patterns) {
                out.append(pattern.matcher(text).find() ? '1' : '0');
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
