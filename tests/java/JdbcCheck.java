import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.List;

/**
 * pgJDBC against `apiary serve`: catalog browsing through DatabaseMetaData
 * and one PreparedStatement run past the driver's switch to server-side
 * prepared statements and binary transfer (after 5 executions).
 * Usage: java -cp postgresql.jar:. JdbcCheck jdbc:postgresql://host:port/db?user=u
 * Exits non-zero, with the reason, on the first wrong answer.
 */
public class JdbcCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    static long count(Statement s) throws Exception {
        try (ResultSet rs = s.executeQuery("SELECT count(*) FROM payments")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /** Base time plus i seconds, keeping the microseconds. */
    static Timestamp at(Timestamp base, int i) {
        Timestamp t = new Timestamp(base.getTime() + i * 1000L);
        t.setNanos(base.getNanos());
        return t;
    }

    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[0])) {
            try (Statement s = conn.createStatement()) {
                s.execute("CREATE TABLE payments (id BIGINT NOT NULL, paid_at TIMESTAMP, amount NUMERIC(12,2), note TEXT)");
            }
            Timestamp base = Timestamp.valueOf("2024-03-01 10:15:30.123456");
            try (PreparedStatement insert = conn.prepareStatement("INSERT INTO payments VALUES (?, ?, ?, ?)")) {
                for (int i = 1; i <= 7; i++) {
                    insert.setLong(1, i);
                    insert.setTimestamp(2, at(base, i));
                    insert.setBigDecimal(3, new BigDecimal(i + ".25"));
                    insert.setString(4, "payment " + i);
                    check(insert.executeUpdate() == 1, "insert " + i + " reports one row");
                }
            }
            try (PreparedStatement select = conn.prepareStatement(
                    "SELECT id, paid_at, amount, note FROM payments WHERE id = ?")) {
                for (int i = 1; i <= 7; i++) {
                    select.setLong(1, i);
                    try (ResultSet rs = select.executeQuery()) {
                        check(rs.next(), "row " + i + " found");
                        check(rs.getLong(1) == i, "id " + i);
                        check(rs.getTimestamp(2).equals(at(base, i)), "timestamp " + i + ": " + rs.getTimestamp(2));
                        check(rs.getBigDecimal(3).compareTo(new BigDecimal(i + ".25")) == 0,
                                "amount " + i + ": " + rs.getBigDecimal(3));
                        check(rs.getString(4).equals("payment " + i), "note " + i);
                        check(!rs.next(), "one row for id " + i);
                    }
                }
            }

            DatabaseMetaData meta = conn.getMetaData();
            check(meta.getDatabaseMajorVersion() == 15, "server version 15.x");
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, null, "%", new String[] {"TABLE"})) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
                }
            }
            check(tables.contains("default.payments"), "getTables lists default.payments: " + tables);
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, "default", "payments", null)) {
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
                }
            }
            check(columns.size() == 4 && columns.get(0).startsWith("id:") && columns.get(3).startsWith("note:"),
                    "getColumns: " + columns);
            try (ResultSet rs = meta.getPrimaryKeys(null, "default", "payments")) {
                check(!rs.next(), "frames have no primary keys");
            }
            System.out.println("tables " + tables);
            System.out.println("columns " + columns);

            // Autocommit off, as many tools run: ROLLBACK keeps nothing, COMMIT keeps all.
            conn.setAutoCommit(false);
            try (PreparedStatement insert = conn.prepareStatement("INSERT INTO payments (id) VALUES (?)");
                 Statement s = conn.createStatement()) {
                insert.setLong(1, 100);
                insert.executeUpdate();
                s.executeUpdate("DELETE FROM payments WHERE id = 1");
                check(count(s) == 7, "read-your-writes inside the transaction");
                conn.rollback();
                check(count(s) == 7, "rollback keeps the frame as it was");
                insert.setLong(1, 101);
                insert.executeUpdate();
                conn.commit();
                check(count(s) == 8, "commit keeps the insert");
                conn.commit();
            }
            conn.setAutoCommit(true);
            System.out.println("transactions ok");
            // With autocommit off, setFetchSize streams through a suspended
            // portal: the driver executes it 100 rows at a time.
            try (Statement s = conn.createStatement()) {
                s.executeUpdate("CREATE TABLE numbers AS SELECT value AS n FROM generate_series(1, 2500) AS g(value)");
            }
            conn.setAutoCommit(false);
            try (Statement s = conn.createStatement()) {
                s.setFetchSize(100);
                long rows = 0, sum = 0;
                try (ResultSet rs = s.executeQuery("SELECT n FROM numbers ORDER BY n")) {
                    while (rs.next()) {
                        rows++;
                        sum += rs.getLong(1);
                        check(rs.getLong(1) == rows, "rows arrive in order across fetches");
                    }
                }
                check(rows == 2500 && sum == 2500L * 2501 / 2, "fetch-size streaming read every row once");
                conn.commit();
            }
            conn.setAutoCommit(true);
            System.out.println("fetch size ok");
        }
        System.out.println("ok");
    }
}
