import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;

/**
 * Streams a frame of N rows through pgJDBC with setFetchSize: with autocommit
 * off the driver executes the portal 1,000 rows at a time, so the server holds
 * one batch, not the result. Prints "streamed N" after checking every row.
 *
 * Usage: java JdbcStream jdbc:postgresql://host:port/db?user=u N
 */
public class JdbcStream {
    public static void main(String[] args) throws Exception {
        long n = Long.parseLong(args[1]);
        try (Connection conn = DriverManager.getConnection(args[0])) {
            try (Statement s = conn.createStatement()) {
                s.executeUpdate("CREATE TABLE stream AS SELECT value AS n FROM generate_series(1, " + n + ") AS g(value)");
            }
            System.out.println("created");
            conn.setAutoCommit(false);
            long rows = 0, sum = 0;
            try (Statement s = conn.createStatement()) {
                s.setFetchSize(1000);
                try (ResultSet rs = s.executeQuery("SELECT n, repeat('x', 200) AS pad FROM stream")) {
                    while (rs.next()) {
                        rows++;
                        sum += rs.getLong(1);
                        if (rs.getString(2).length() != 200) throw new AssertionError("pad");
                    }
                }
            }
            conn.commit();
            if (rows != n || sum != n * (n + 1) / 2) throw new AssertionError(rows + " rows, sum " + sum);
            System.out.println("streamed " + rows);
        }
    }
}
