import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.util.concurrent.Callable;

/**
 * Prints what pgJDBC's DatabaseMetaData answers for the tables of one
 * schema: every method DBeaver and Metabase call while browsing, each as a
 * "## name" line, the result's column labels and its rows (tab-separated),
 * or "error: SQLSTATE message" where the method throws. tests/python/
 * test_jdbc.py runs it against PostgreSQL and Apiary and compares.
 * Usage: java -cp postgresql.jar:. JdbcMetadata jdbc:postgresql://host:port/db?user=u schema
 */
public class JdbcMetadata {
    static void show(String name, Callable<Object> call) {
        System.out.println("## " + name);
        try {
            Object answer = call.call();
            if (answer instanceof ResultSet) {
                try (ResultSet rs = (ResultSet) answer) {
                    ResultSetMetaData columns = rs.getMetaData();
                    StringBuilder line = new StringBuilder();
                    for (int i = 1; i <= columns.getColumnCount(); i++) {
                        line.append(i > 1 ? "\t" : "").append(columns.getColumnLabel(i));
                    }
                    System.out.println(line);
                    while (rs.next()) {
                        line.setLength(0);
                        for (int i = 1; i <= columns.getColumnCount(); i++) {
                            line.append(i > 1 ? "\t" : "").append(rs.getString(i));
                        }
                        System.out.println(line);
                    }
                }
            } else {
                System.out.println(answer);
            }
        } catch (java.sql.SQLException e) {
            System.out.println("error: " + e.getSQLState() + " " + e.getMessage().split("\n")[0]);
        } catch (Exception e) {
            System.out.println("error: " + e);
        }
    }

    public static void main(String[] args) throws Exception {
        String schema = args[1];
        try (Connection conn = DriverManager.getConnection(args[0])) {
            DatabaseMetaData meta = conn.getMetaData();
            show("getSchemas", () -> meta.getSchemas(null, schema));
            show("getTableTypes", () -> meta.getTableTypes());
            show("getTables", () -> meta.getTables(null, schema, "%", null));
            show("getTables(TABLE,VIEW)", () -> meta.getTables(null, schema, "%", new String[] {"TABLE", "VIEW"}));
            show("getColumns", () -> meta.getColumns(null, schema, "%", "%"));
            show("getPrimaryKeys", () -> meta.getPrimaryKeys(null, schema, "cities"));
            show("getImportedKeys", () -> meta.getImportedKeys(null, schema, "cities"));
            show("getExportedKeys", () -> meta.getExportedKeys(null, schema, "cities"));
            show("getCrossReference", () -> meta.getCrossReference(null, schema, "cities", null, schema, "empty"));
            show("getIndexInfo", () -> meta.getIndexInfo(null, schema, "cities", false, true));
            show("getIndexInfo(unique)", () -> meta.getIndexInfo(null, schema, "cities", true, false));
            show("getTablePrivileges", () -> meta.getTablePrivileges(null, schema, "%"));
            show("getColumnPrivileges", () -> meta.getColumnPrivileges(null, schema, "cities", "%"));
            show("getBestRowIdentifier", () -> meta.getBestRowIdentifier(null, schema, "cities",
                    DatabaseMetaData.bestRowSession, true));
            show("getVersionColumns", () -> meta.getVersionColumns(null, schema, "cities"));
            show("getProcedures", () -> meta.getProcedures(null, schema, "%"));
            show("getProcedureColumns", () -> meta.getProcedureColumns(null, schema, "%", "%"));
            show("getFunctions", () -> meta.getFunctions(null, schema, "%"));
            show("getFunctionColumns", () -> meta.getFunctionColumns(null, schema, "%", "%"));
            show("getUDTs", () -> meta.getUDTs(null, schema, "%", null));
            show("getSuperTypes", () -> meta.getSuperTypes(null, schema, "%"));
            show("getSuperTables", () -> meta.getSuperTables(null, schema, "%"));
            show("getAttributes", () -> meta.getAttributes(null, schema, "%", "%"));
            show("getPseudoColumns", () -> meta.getPseudoColumns(null, schema, "%", "%"));
            show("getClientInfoProperties", () -> meta.getClientInfoProperties());
            show("getTypeInfo", () -> meta.getTypeInfo());
            show("getCatalogs", () -> meta.getCatalogs());
            show("getSQLKeywords", () -> meta.getSQLKeywords());
            show("getNumericFunctions", () -> meta.getNumericFunctions());
            show("getStringFunctions", () -> meta.getStringFunctions());
            show("getSystemFunctions", () -> meta.getSystemFunctions());
            show("getTimeDateFunctions", () -> meta.getTimeDateFunctions());
            show("getIdentifierQuoteString", () -> meta.getIdentifierQuoteString());
            show("getSearchStringEscape", () -> meta.getSearchStringEscape());
            show("getMaxColumnNameLength", () -> meta.getMaxColumnNameLength());
            show("getDefaultTransactionIsolation", () -> meta.getDefaultTransactionIsolation());
            show("getDatabaseMajorVersion", () -> meta.getDatabaseMajorVersion());
            show("getUserName", () -> meta.getUserName());
            show("isReadOnly", () -> meta.isReadOnly());
            show("getCatalog", () -> conn.getCatalog());
            show("getSchema", () -> conn.getSchema());
            show("getTransactionIsolation", () -> conn.getTransactionIsolation());
        }
    }
}
