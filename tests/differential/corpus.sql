-- Differential corpus: every query runs on PostgreSQL (the oracle) and on
-- Apiary, over the tables of tests/python/test_differential.py (kinds,
-- customers, orders, lineitem, bag_a, bag_b, emp). One query per entry, each
-- introduced by an `-- id:` line. A query returning more than one row must
-- order its output completely, so row order never causes a difference.

-- ===== literals and casts =====

-- id: lit_int
SELECT 1;

-- id: lit_bigint
SELECT 9223372036854775807;

-- id: lit_int_past_int4
SELECT 2147483648;

-- id: lit_negative
SELECT -7;

-- id: lit_numeric
SELECT 1.5;

-- id: lit_numeric_trailing_zero
SELECT 1.50;

-- id: lit_numeric_exponent
SELECT 1e3;

-- id: lit_numeric_long
SELECT 12345678901234567890.123456789;

-- id: lit_text
SELECT 'abc';

-- id: lit_text_unicode
SELECT 'héllo ✓ 日本';

-- id: lit_empty_string
SELECT '';

-- id: lit_bool
SELECT true, false;

-- id: lit_null
SELECT NULL;

-- id: lit_null_typed
SELECT NULL::int, NULL::text, NULL::date;

-- id: lit_escape_string
SELECT E'a\tb', E'line1\nline2';

-- id: lit_dollar_quoted
SELECT $$it's$$;

-- id: cast_text_to_int
SELECT '42'::int, CAST(' 7 ' AS bigint);

-- id: cast_int_to_text
SELECT 42::text, (-1)::bigint::text;

-- id: cast_float_to_text
SELECT 0.1::float8::text, 1e16::float8::text, 2.5::float8::text;

-- id: cast_numeric_scale
SELECT 3.14159::numeric(10,2), 2.5::numeric(10,0), (-2.5)::numeric(10,0);

-- id: cast_numeric_overflow
SELECT 12345.678::numeric(5,2);

-- id: cast_float_to_int_rounding
SELECT 2.5::float8::int, 3.5::float8::int, (-2.5)::float8::int;

-- id: cast_numeric_to_int_rounding
SELECT 2.5::int, 3.5::int, (-2.5)::int;

-- id: cast_text_to_bool
SELECT 'yes'::boolean, 'f'::boolean, 'on'::boolean;

-- id: cast_bool_to_text
SELECT true::text, false::text;

-- id: cast_bool_to_int
SELECT true::int, false::int;

-- id: cast_date_literal
SELECT DATE '2024-02-29';

-- id: cast_text_to_date
SELECT '2024-02-29'::date;

-- id: cast_date_to_text
SELECT DATE '2024-02-29'::text;

-- id: cast_timestamp_literal
SELECT TIMESTAMP '2024-01-02 03:04:05.678';

-- id: cast_timestamptz_literal
SELECT TIMESTAMPTZ '2024-01-02 03:04:05+02';

-- id: cast_interval_literal
SELECT INTERVAL '1 day 2 hours';

-- id: cast_real
SELECT 1.5::real, 0.1::real;

-- id: cast_smallint
SELECT 7::smallint, (-32768)::smallint;

-- id: cast_bytea
SELECT '\xdeadbeef'::bytea;

-- id: cast_float_special_values
SELECT 'NaN'::float8, 'Infinity'::float8, '-Infinity'::float8;

-- id: cast_bad_int
SELECT 'abc'::int;

-- id: cast_bad_date
SELECT '2023-02-29'::date;

-- id: cast_varchar_length
SELECT 'abcdef'::varchar(3);

-- id: cast_float_large_and_small
SELECT 1e15::float8, 123456789012345678::float8, 1e-5::float8, 0.0001::float8;

-- id: cast_numeric_to_float
SELECT 0.1::float8, 1.0::float8, 100::float8;

-- id: cast_int_to_numeric
SELECT 5::numeric, 5::numeric(10,2);

-- ===== pg_typeof =====

-- id: typeof_int
SELECT pg_typeof(1);

-- id: typeof_int_past_int4
SELECT pg_typeof(3000000000);

-- id: typeof_numeric
SELECT pg_typeof(1.5);

-- id: typeof_text
SELECT pg_typeof('a'::text);

-- id: typeof_unknown_literal
SELECT pg_typeof('a');

-- id: typeof_int_division
SELECT pg_typeof(7 / 2);

-- id: typeof_float_times_int
SELECT pg_typeof(1.5::float8 * 2);

-- id: typeof_date_minus_date
SELECT pg_typeof(DATE '2024-01-02' - DATE '2024-01-01');

-- id: typeof_aggregates
SELECT pg_typeof(count(*)), pg_typeof(sum(id)), pg_typeof(avg(id)), pg_typeof(sum(big)), pg_typeof(sum(dbl)) FROM kinds;

-- id: typeof_columns
SELECT pg_typeof(id), pg_typeof(big), pg_typeof(small), pg_typeof(num), pg_typeof(rl), pg_typeof(vc), pg_typeof(ts), pg_typeof(tstz) FROM kinds WHERE id = 1;

-- id: typeof_now
SELECT pg_typeof(now()), pg_typeof(current_date);

-- ===== arithmetic =====

-- id: arith_int_division
SELECT 7 / 2, -7 / 2, 7 % 3, -7 % 3;

-- id: arith_numeric_division
SELECT 7.0 / 2, 1.0 / 3, 2.0 / 3;

-- id: arith_float_division
SELECT 7::float8 / 2, 1::float8 / 3;

-- id: arith_int_plus_numeric
SELECT 1 + 1.5, 2 * 0.5;

-- id: arith_precedence
SELECT 2 + 3 * 4, (2 + 3) * 4, 10 - 2 - 3;

-- id: arith_power_operator
SELECT 2 ^ 10, 2 ^ 3 ^ 2;

-- id: arith_unary
SELECT - (-5), +3, -(2.5);

-- id: arith_int_division_by_zero
SELECT 1 / 0;

-- id: arith_float_division_by_zero
SELECT 1.0::float8 / 0;

-- id: arith_numeric_division_by_zero
SELECT 1.0 / 0;

-- id: arith_modulo_by_zero
SELECT 5 % 0;

-- id: arith_int4_overflow
SELECT 100000 * 100000;

-- id: arith_int8_overflow
SELECT big + 1 FROM kinds WHERE id = 1;

-- id: arith_int8_negate_min
SELECT -big FROM kinds WHERE id = 2;

-- id: arith_int2_overflow
SELECT small + 1::smallint FROM kinds WHERE id = 1;

-- id: arith_smallint_plus_smallint
SELECT small + small, small * 2 FROM kinds WHERE id = 5;

-- id: arith_columns
SELECT id, big - 1, small * 2, num * 2, dbl / 2 FROM kinds WHERE id IN (3, 5, 7) ORDER BY id;

-- id: arith_numeric_columns
SELECT id, num + 0.001, num * num, num / 3 FROM kinds WHERE id IN (5, 6, 8) ORDER BY id;

-- id: arith_float_sum_repr
SELECT 0.1::float8 + 0.2::float8;

-- id: arith_float_big_plus_one
SELECT 1e16::float8 + 1, 1e16::float8 * 10;

-- id: arith_real_times_int
SELECT 1.1::real * 3, 1.5::real + 1.5::real;

-- id: arith_numeric_scale_of_sum
SELECT 1.10 + 2.205, 1.10 * 2.205;

-- id: arith_numeric_huge
SELECT 12345678901234567890 * 10;

-- id: arith_numeric_modulo
SELECT 10.5 % 3, -10.5 % 3;

-- id: arith_int_numeric_compare
SELECT 1 = 1.0, 1 < 1.5, 2 > 1.99::float8;

-- id: arith_bigint_times_int
SELECT o_id * o_priority FROM orders WHERE o_id = 7;

-- id: arith_int_division_columns
SELECT l_order, l_line, l_qty / 7, l_qty % 7 FROM lineitem WHERE l_order <= 4 ORDER BY 1, 2;

-- id: arith_numeric_times_int_columns
SELECT l_order, l_line, l_price * l_qty FROM lineitem WHERE l_order <= 5 ORDER BY 1, 2;

-- id: arith_float_times_numeric
SELECT l_order, l_line, l_price * l_discount FROM lineitem WHERE l_order <= 3 ORDER BY 1, 2;

-- ===== math functions =====

-- id: math_abs
SELECT abs(-5), abs(-5.5), abs(-2.5::float8), abs(-7::smallint);

-- id: math_round_numeric
SELECT round(2.5), round(-2.5), round(3.14159, 2), round(1234.5678, -2);

-- id: math_round_float
SELECT round(2.5::float8), round(3.5::float8), round(-0.5::float8);

-- id: math_trunc
SELECT trunc(2.7), trunc(-2.7), trunc(3.14159, 3), trunc(2.7::float8);

-- id: math_ceil_floor
SELECT ceil(2.1), floor(-2.1), ceil(-0.5::float8), floor(2.9::float8), ceiling(4);

-- id: math_mod
SELECT mod(10, 3), mod(-10, 3), mod(10.5, 3);

-- id: math_power
SELECT power(2, 10), power(2.0, 0.5), power(2::float8, -1);

-- id: math_sqrt
SELECT sqrt(2), sqrt(16::float8), sqrt(2.0);

-- id: math_sqrt_negative
SELECT sqrt(-1);

-- id: math_sign
SELECT sign(-3), sign(0), sign(2.5), sign(-0.5::float8);

-- id: math_div
SELECT div(7, 2), div(-7, 2), div(7.5, 2);

-- id: math_width_bucket
SELECT width_bucket(5.35, 0.024, 10.06, 5), width_bucket(-1, 0, 10, 5), width_bucket(11, 0, 10, 5);

-- id: math_width_bucket_columns
SELECT o_id, width_bucket(o_total, 0, 1000, 4) FROM orders WHERE o_id <= 12 ORDER BY o_id;

-- id: math_exp_ln_log
SELECT exp(1::float8), ln(10::float8), log(100::float8), log10(1000::float8);

-- id: math_cbrt
SELECT cbrt(27::float8);

-- id: math_pi
SELECT pi();

-- id: math_trig
SELECT sin(0::float8), cos(0::float8), atan2(1::float8, 1::float8), degrees(pi());

-- id: math_gcd_lcm
SELECT gcd(12, 18), lcm(4, 6);

-- id: math_on_columns
SELECT id, abs(big), round(num, 1), ceil(dbl) FROM kinds WHERE id IN (3, 5, 6, 7, 8) ORDER BY id;

-- id: math_abs_min_bigint
SELECT abs(big) FROM kinds WHERE id = 2;

-- id: math_round_columns
SELECT o_id, round(o_total), trunc(o_total, 1), ceil(o_total), floor(o_total) FROM orders WHERE o_id <= 10 ORDER BY o_id;

-- id: math_ln_zero
SELECT ln(0::float8);

-- ===== aggregates =====

-- id: agg_count
SELECT count(*), count(big), count(txt), count(DISTINCT flag) FROM kinds;

-- id: agg_sum_int
SELECT sum(id), sum(small) FROM kinds;

-- id: agg_sum_bigint_extremes
SELECT sum(big) FROM kinds;

-- id: agg_sum_bigint_no_overflow
SELECT sum(big) FROM kinds WHERE id <> 1;

-- id: agg_sum_numeric
SELECT sum(num) FROM kinds;

-- id: agg_avg_int
SELECT avg(id) FROM kinds;

-- id: agg_avg_smallint
SELECT avg(small) FROM kinds;

-- id: agg_avg_numeric
SELECT avg(o_total) FROM orders;

-- id: agg_avg_float
SELECT avg(l_discount) FROM lineitem;

-- id: agg_sum_float
SELECT sum(l_discount) FROM lineitem;

-- id: agg_sum_real
SELECT sum(rl) FROM kinds;

-- id: agg_min_max
SELECT min(big), max(big), min(txt), max(txt), min(d), max(d) FROM kinds;

-- id: agg_min_max_numeric_float
SELECT min(num), max(num), min(dbl), max(dbl), min(rl), max(rl) FROM kinds;

-- id: agg_min_max_timestamps
SELECT min(ts), max(ts), min(tstz), max(tstz) FROM kinds;

-- id: agg_bool_and_or
SELECT bool_and(flag), bool_or(flag), every(flag) FROM kinds;

-- id: agg_bool_and_grouped
SELECT o_status, bool_and(o_priority > 1), bool_or(o_priority = 5) FROM orders GROUP BY o_status ORDER BY o_status;

-- id: agg_string_agg_ordered
SELECT string_agg(o_status, ',' ORDER BY o_id) FROM orders WHERE o_id <= 10;

-- id: agg_string_agg_distinct
SELECT string_agg(DISTINCT l_part, '|' ORDER BY l_part) FROM lineitem;

-- id: agg_string_agg_nulls
SELECT string_agg(txt, ';' ORDER BY id) FROM kinds;

-- id: agg_array_agg_ordered
SELECT array_agg(o_id ORDER BY o_id DESC) FROM orders WHERE o_id <= 8;

-- id: agg_array_agg_text
SELECT array_agg(txt ORDER BY id) FROM kinds;

-- id: agg_array_agg_nulls
SELECT array_agg(big ORDER BY id) FROM kinds;

-- id: agg_array_agg_grouped
SELECT o_status, array_agg(o_id ORDER BY o_id) FROM orders WHERE o_id <= 12 GROUP BY o_status ORDER BY o_status;

-- id: agg_count_distinct
SELECT count(DISTINCT o_cust), count(DISTINCT o_status), count(DISTINCT (o_status, o_priority)) FROM orders;

-- id: agg_sum_distinct
SELECT sum(DISTINCT l_qty), avg(DISTINCT l_qty) FROM lineitem;

-- id: agg_filter_clause
SELECT count(*) FILTER (WHERE o_status = 'F'), sum(o_total) FILTER (WHERE o_priority > 3) FROM orders;

-- id: agg_over_empty_input
SELECT count(*), sum(id), avg(id), max(id), bool_and(flag), string_agg(txt, ',') FROM kinds WHERE id > 100;

-- id: agg_empty_group_by
SELECT o_status, count(*) FROM orders WHERE false GROUP BY o_status;

-- id: agg_stddev_variance_int
SELECT stddev(l_qty), variance(l_qty) FROM lineitem;

-- id: agg_stddev_pop_float
SELECT stddev_pop(l_discount), var_samp(l_discount) FROM lineitem;

-- id: agg_count_nullif
SELECT count(NULLIF(o_status, 'F')) FROM orders;

-- id: agg_percentile
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l_qty), percentile_disc(0.5) WITHIN GROUP (ORDER BY l_qty) FROM lineitem;

-- id: agg_bit_and_or
SELECT bit_and(l_qty), bit_or(l_qty) FROM lineitem;

-- id: agg_sum_product
SELECT sum(l_qty * l_price), sum(l_price) FROM lineitem;

-- id: agg_sum_smallint_column
SELECT sum(o_priority), avg(o_priority), max(o_priority) FROM orders;

-- id: agg_corr
SELECT corr(l_qty, l_discount) IS NOT NULL, regr_count(l_qty, l_discount) FROM lineitem;

-- ===== GROUP BY / HAVING =====

-- id: grp_basic
SELECT o_status, count(*), sum(o_total) FROM orders GROUP BY o_status ORDER BY o_status;

-- id: grp_null_key
SELECT o_cust, count(*) FROM orders GROUP BY o_cust ORDER BY o_cust NULLS FIRST;

-- id: grp_having_count
SELECT o_cust, count(*) FROM orders GROUP BY o_cust HAVING count(*) > 6 ORDER BY o_cust;

-- id: grp_having_sum
SELECT l_part, sum(l_qty) FROM lineitem GROUP BY l_part HAVING sum(l_qty) > 300 ORDER BY l_part;

-- id: grp_ordinals
SELECT o_status, o_priority, count(*) FROM orders GROUP BY 1, 2 ORDER BY 1, 2;

-- id: grp_expression
SELECT o_id % 4 AS b, count(*) FROM orders GROUP BY o_id % 4 ORDER BY b;

-- id: grp_alias
SELECT extract(month FROM o_date) AS m, count(*) FROM orders GROUP BY m ORDER BY m;

-- id: grp_boolean_key
SELECT flag, count(*) FROM kinds GROUP BY flag ORDER BY flag NULLS LAST;

-- id: grp_having_without_group
SELECT count(*) FROM orders HAVING count(*) > 0;

-- id: grp_having_false
SELECT count(*) FROM orders HAVING count(*) > 1000;

-- id: grp_several_aggregates
SELECT o_status, avg(o_total), min(o_date), max(o_date) FROM orders GROUP BY o_status ORDER BY o_status;

-- id: grp_left_join_region
SELECT c.c_region, count(o.o_id), sum(o.o_total) FROM customers c LEFT JOIN orders o ON o.o_cust = c.c_id GROUP BY c.c_region ORDER BY c.c_region NULLS FIRST;

-- id: grp_date_trunc_key
SELECT date_trunc('month', o_date) AS m, count(*) FROM orders GROUP BY 1 ORDER BY 1;

-- id: grp_length_key
SELECT length(l_part), count(*) FROM lineitem GROUP BY 1 ORDER BY 1;

-- id: grp_two_keys_having_avg
SELECT l_part, l_returned, avg(l_qty) FROM lineitem GROUP BY l_part, l_returned HAVING avg(l_qty) > 20 ORDER BY 1, 2;

-- ===== grouping sets =====

-- id: gs_rollup
SELECT o_status, o_priority, count(*), sum(o_total) FROM orders GROUP BY ROLLUP (o_status, o_priority) ORDER BY o_status NULLS LAST, o_priority NULLS LAST;

-- id: gs_cube
SELECT o_status, l_returned, count(*) FROM orders JOIN lineitem ON l_order = o_id GROUP BY CUBE (o_status, l_returned) ORDER BY 1 NULLS LAST, 2 NULLS LAST;

-- id: gs_grouping_sets
SELECT o_status, o_priority, count(*) FROM orders GROUP BY GROUPING SETS ((o_status), (o_priority), ()) ORDER BY 1 NULLS LAST, 2 NULLS LAST, 3;

-- id: gs_grouping_function
SELECT o_status, grouping(o_status), count(*) FROM orders GROUP BY ROLLUP (o_status) ORDER BY 2, 1;

-- id: gs_rollup_null_data
SELECT o_cust, count(*) FROM orders GROUP BY ROLLUP (o_cust) ORDER BY 1 NULLS FIRST, 2;

-- id: gs_cube_parts
SELECT l_returned, l_part, count(*) FROM lineitem GROUP BY CUBE (l_returned, l_part) ORDER BY 1 NULLS LAST, 2 NULLS LAST, 3;

-- ===== DISTINCT =====

-- id: distinct_single
SELECT DISTINCT o_status FROM orders ORDER BY 1;

-- id: distinct_multi
SELECT DISTINCT o_status, o_priority FROM orders ORDER BY 1, 2;

-- id: distinct_nulls
SELECT DISTINCT flag FROM kinds ORDER BY 1 NULLS FIRST;

-- id: distinct_on
SELECT DISTINCT ON (o_status) o_status, o_id, o_total FROM orders ORDER BY o_status, o_total DESC, o_id;

-- id: distinct_on_nullable_key
SELECT DISTINCT ON (o_cust) o_cust, o_date, o_id FROM orders ORDER BY o_cust NULLS FIRST, o_date DESC, o_id;

-- id: distinct_in_subquery_count
SELECT count(*) FROM (SELECT DISTINCT l_part, l_returned FROM lineitem) s;

-- id: distinct_expression
SELECT DISTINCT o_id % 3 FROM orders ORDER BY 1;

-- ===== ORDER BY / LIMIT =====

-- id: ord_nulls_default_asc
SELECT id, big FROM kinds ORDER BY big, id;

-- id: ord_nulls_default_desc
SELECT id, big FROM kinds ORDER BY big DESC, id;

-- id: ord_nulls_first
SELECT id, txt FROM kinds ORDER BY txt NULLS FIRST, id;

-- id: ord_desc_nulls_last
SELECT id, d FROM kinds ORDER BY d DESC NULLS LAST, id;

-- id: ord_text_codepoint
SELECT txt FROM kinds WHERE txt IS NOT NULL ORDER BY txt;

-- id: ord_expression
SELECT o_id, o_total FROM orders ORDER BY o_total * -1, o_id LIMIT 5;

-- id: ord_alias_desc
SELECT o_id AS x FROM orders ORDER BY x DESC LIMIT 3;

-- id: ord_limit_offset
SELECT o_id FROM orders ORDER BY o_id LIMIT 5 OFFSET 10;

-- id: ord_offset_only
SELECT o_id FROM orders ORDER BY o_id OFFSET 55;

-- id: ord_limit_zero
SELECT o_id FROM orders ORDER BY o_id LIMIT 0;

-- id: ord_fetch_first
SELECT o_id FROM orders ORDER BY o_id FETCH FIRST 3 ROWS ONLY;

-- id: ord_offset_fetch_next
SELECT o_id FROM orders ORDER BY o_id OFFSET 2 ROWS FETCH NEXT 2 ROWS ONLY;

-- id: ord_fetch_with_ties
SELECT o_id FROM (SELECT o_id FROM orders ORDER BY o_priority FETCH FIRST 3 ROWS WITH TIES) s ORDER BY o_id;

-- id: ord_by_position
SELECT o_status, count(*) FROM orders GROUP BY o_status ORDER BY 2 DESC, 1;

-- id: ord_boolean
SELECT flag, id FROM kinds ORDER BY flag, id;

-- id: ord_float_with_negative_zero
SELECT id, dbl FROM kinds ORDER BY dbl, id;

-- id: ord_numeric_desc
SELECT id, num FROM kinds ORDER BY num DESC NULLS LAST, id;

-- id: ord_limit_expression
SELECT o_id FROM orders ORDER BY o_id LIMIT 2 + 1;

-- id: ord_date_desc
SELECT o_id, o_date FROM orders ORDER BY o_date DESC, o_id LIMIT 6;

-- id: ord_timestamp
SELECT id, ts FROM kinds ORDER BY ts NULLS FIRST, id;

-- ===== joins =====

-- id: join_inner
SELECT o.o_id, c.c_name FROM orders o JOIN customers c ON o.o_cust = c.c_id ORDER BY o.o_id;

-- id: join_left
SELECT c.c_id, o.o_id FROM customers c LEFT JOIN orders o ON o.o_cust = c.c_id ORDER BY c.c_id, o.o_id NULLS FIRST;

-- id: join_right
SELECT o.o_id, c.c_name FROM customers c RIGHT JOIN orders o ON o.o_cust = c.c_id ORDER BY o.o_id;

-- id: join_full
SELECT c.c_id, o.o_id FROM customers c FULL JOIN orders o ON o.o_cust = c.c_id ORDER BY c.c_id NULLS FIRST, o.o_id NULLS FIRST;

-- id: join_cross_values
SELECT c.c_id, s.n FROM customers c CROSS JOIN (VALUES (1), (2)) AS s(n) ORDER BY 1, 2;

-- id: join_comma_count
SELECT count(*) FROM customers, orders;

-- id: join_self
SELECT a.o_id, b.o_id FROM orders a JOIN orders b ON a.o_cust = b.o_cust AND a.o_id < b.o_id WHERE a.o_id <= 10 ORDER BY 1, 2;

-- id: join_using
SELECT l_order, count(*) FROM lineitem JOIN (SELECT o_id AS l_order, o_status FROM orders) o USING (l_order) GROUP BY l_order ORDER BY l_order LIMIT 10;

-- id: join_using_star
SELECT * FROM (VALUES (1, 'a'), (2, 'b')) x(k, v) JOIN (VALUES (2, 'z'), (3, 'y')) y(k, w) USING (k) ORDER BY k;

-- id: join_natural
SELECT * FROM (VALUES (1, 'a')) x(k, v) NATURAL JOIN (VALUES (1, 'z')) y(k, w);

-- id: join_full_using
SELECT k, x.v, y.w FROM (VALUES (1, 'a'), (2, 'b')) x(k, v) FULL JOIN (VALUES (2, 'z'), (3, 'y')) y(k, w) USING (k) ORDER BY k;

-- id: join_full_using_star
SELECT * FROM (VALUES (1, 'a'), (2, 'b')) x(k, v) FULL JOIN (VALUES (2, 'z'), (3, 'y')) y(k, w) USING (k) ORDER BY k;

-- id: join_right_using_star
SELECT * FROM (VALUES (1, 'a'), (2, 'b')) x(k, v) RIGHT JOIN (VALUES (2, 'z'), (3, 'y')) y(k, w) USING (k) ORDER BY k;

-- id: join_three_tables
SELECT c.c_region, sum(l.l_qty) FROM customers c JOIN orders o ON o.o_cust = c.c_id JOIN lineitem l ON l.l_order = o.o_id GROUP BY c.c_region ORDER BY 1 NULLS FIRST;

-- id: join_non_equi
SELECT o.o_id, l.l_line FROM orders o JOIN lineitem l ON l.l_order = o.o_id AND l.l_qty > o.o_priority * 8 WHERE o.o_id < 15 ORDER BY 1, 2;

-- id: join_left_filter_in_on
SELECT c.c_id, count(o.o_id) FROM customers c LEFT JOIN orders o ON o.o_cust = c.c_id AND o.o_status = 'F' GROUP BY c.c_id ORDER BY c.c_id;

-- id: join_left_filter_in_where
SELECT c.c_id, count(o.o_id) FROM customers c LEFT JOIN orders o ON o.o_cust = c.c_id WHERE o.o_status = 'F' GROUP BY c.c_id ORDER BY c.c_id;

-- id: join_null_keys_never_match
SELECT count(*) FROM orders a JOIN orders b ON a.o_cust = b.o_cust;

-- id: join_is_not_distinct_from
SELECT count(*) FROM orders a JOIN orders b ON a.o_cust IS NOT DISTINCT FROM b.o_cust;

-- id: join_anti_via_left
SELECT o.o_id FROM orders o LEFT JOIN lineitem l ON l.l_order = o.o_id WHERE l.l_order IS NULL ORDER BY 1;

-- id: join_lateral
SELECT c.c_id, t.o_id FROM customers c, LATERAL (SELECT o_id FROM orders o WHERE o.o_cust = c.c_id ORDER BY o_id LIMIT 2) t ORDER BY 1, 2;

-- id: join_self_on_text
SELECT a.id, b.id FROM kinds a JOIN kinds b ON a.txt = b.txt AND a.id < b.id ORDER BY 1, 2;

-- id: join_smallint_bigint_keys
SELECT a.id, b.id FROM kinds a JOIN kinds b ON a.small = b.big ORDER BY 1, 2;

-- id: join_right_unmatched_count
SELECT count(*), count(c.c_id) FROM customers c RIGHT JOIN orders o ON o.o_cust = c.c_id;

-- id: join_full_aggregate
SELECT count(*), count(c.c_id), count(o.o_id) FROM customers c FULL JOIN orders o ON o.o_cust = c.c_id;

-- id: join_emp_boss
SELECT e.name, b.name FROM emp e LEFT JOIN emp b ON e.boss = b.id ORDER BY 1, 2;

-- ===== subqueries =====

-- id: sub_scalar
SELECT (SELECT max(o_total) FROM orders);

-- id: sub_scalar_correlated_select_list
SELECT c_id, (SELECT count(*) FROM orders o WHERE o.o_cust = c.c_id) FROM customers c ORDER BY c_id;

-- id: sub_scalar_empty
SELECT (SELECT o_id FROM orders WHERE o_id < 0);

-- id: sub_scalar_more_than_one_row
SELECT (SELECT o_id FROM orders);

-- id: sub_in
SELECT c_id FROM customers WHERE c_id IN (SELECT o_cust FROM orders WHERE o_status = 'P') ORDER BY 1;

-- id: sub_not_in_with_null
SELECT c_id FROM customers WHERE c_id NOT IN (SELECT o_cust FROM orders) ORDER BY 1;

-- id: sub_not_in_without_null
SELECT c_id FROM customers WHERE c_id NOT IN (SELECT o_cust FROM orders WHERE o_cust IS NOT NULL) ORDER BY 1;

-- id: sub_exists
SELECT c_id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.o_cust = c.c_id AND o.o_total > 500) ORDER BY 1;

-- id: sub_not_exists
SELECT c_id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.o_cust = c.c_id) ORDER BY 1;

-- id: sub_correlated_where
SELECT o_id, o_total FROM orders o WHERE o_total > (SELECT avg(o2.o_total) FROM orders o2 WHERE o2.o_status = o.o_status) ORDER BY o_id;

-- id: sub_any
SELECT o_id FROM orders WHERE o_priority = ANY (SELECT o_priority FROM orders WHERE o_id < 3) AND o_id < 20 ORDER BY o_id;

-- id: sub_all
SELECT o_id FROM orders WHERE o_total > ALL (SELECT l_price FROM lineitem WHERE l_order = 1) AND o_id < 20 ORDER BY 1;

-- id: sub_all_empty
SELECT count(*) FROM orders WHERE o_total > ALL (SELECT l_price FROM lineitem WHERE l_order < 0);

-- id: sub_any_array
SELECT id FROM kinds WHERE id = ANY (ARRAY[1, 3, 5]) ORDER BY 1;

-- id: sub_all_array_with_null
SELECT 5 > ALL (ARRAY[1, 2, NULL]), 5 > ANY (ARRAY[1, NULL]);

-- id: sub_in_list_with_null
SELECT 1 IN (1, NULL), 2 IN (1, NULL), 2 NOT IN (1, NULL);

-- id: sub_derived_table
SELECT s.st, s.n FROM (SELECT o_status AS st, count(*) AS n FROM orders GROUP BY o_status) s WHERE s.n > 10 ORDER BY 1;

-- id: sub_exists_in_select_list
SELECT c_id, EXISTS (SELECT 1 FROM orders WHERE o_cust = c_id) FROM customers ORDER BY 1;

-- id: sub_in_having
SELECT o_cust, count(*) FROM orders GROUP BY o_cust HAVING count(*) > (SELECT count(*) / 10 FROM orders) ORDER BY 1 NULLS FIRST;

-- id: sub_nested_aggregate
SELECT max(t) FROM (SELECT sum(l_qty) AS t FROM lineitem GROUP BY l_order) x;

-- id: sub_scalar_in_where
SELECT o_id FROM orders WHERE o_id = (SELECT min(l_order) FROM lineitem WHERE l_returned);

-- id: sub_in_tuple_list
SELECT o_id FROM orders WHERE (o_status, o_priority) IN (('F', 2), ('O', 1)) ORDER BY 1;

-- id: sub_correlated_exists_two_levels
SELECT c_id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.o_cust = c.c_id AND EXISTS (SELECT 1 FROM lineitem l WHERE l.l_order = o.o_id AND l.l_returned)) ORDER BY 1;

-- ===== set operations =====

-- id: set_union
SELECT x, y FROM bag_a UNION SELECT x, y FROM bag_b ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;

-- id: set_union_all
SELECT x, y FROM bag_a UNION ALL SELECT x, y FROM bag_b ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;

-- id: set_intersect
SELECT x, y FROM bag_a INTERSECT SELECT x, y FROM bag_b ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;

-- id: set_intersect_all
SELECT x, y FROM bag_a INTERSECT ALL SELECT x, y FROM bag_b ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;

-- id: set_except
SELECT x, y FROM bag_a EXCEPT SELECT x, y FROM bag_b ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;

-- id: set_except_all
SELECT x, y FROM bag_a EXCEPT ALL SELECT x, y FROM bag_b ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;

-- id: set_except_all_reversed
SELECT x, y FROM bag_b EXCEPT ALL SELECT x, y FROM bag_a ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;

-- id: set_union_int_numeric
SELECT 1 AS v UNION SELECT 2.5 ORDER BY 1;

-- id: set_union_int_bigint
SELECT id FROM kinds UNION SELECT big FROM kinds ORDER BY 1;

-- id: set_union_literals
SELECT 'a' AS v UNION ALL SELECT 'b' ORDER BY 1;

-- id: set_intersect_precedence
SELECT x FROM bag_a UNION SELECT x FROM bag_b INTERSECT SELECT 4 ORDER BY 1 NULLS FIRST;

-- id: set_count_union
SELECT count(*) FROM (SELECT x FROM bag_a UNION SELECT x FROM bag_b) u;

-- id: set_union_all_parenthesized_limits
(SELECT x FROM bag_a WHERE x IS NOT NULL ORDER BY x LIMIT 2) UNION ALL (SELECT x FROM bag_b WHERE x IS NOT NULL ORDER BY x DESC LIMIT 1) ORDER BY 1;

-- id: set_except_with_nulls
SELECT x FROM bag_a EXCEPT SELECT x FROM bag_b WHERE x IS NOT NULL ORDER BY 1 NULLS FIRST;

-- ===== CTEs =====

-- id: cte_basic
WITH t AS (SELECT o_status, sum(o_total) AS s FROM orders GROUP BY o_status) SELECT o_status, s FROM t ORDER BY 1;

-- id: cte_chained
WITH a AS (SELECT o_cust, count(*) AS n FROM orders GROUP BY o_cust), b AS (SELECT n, count(*) AS k FROM a GROUP BY n) SELECT n, k FROM b ORDER BY n;

-- id: cte_referenced_twice
WITH t AS (SELECT o_cust, count(*) AS n FROM orders WHERE o_cust IS NOT NULL GROUP BY o_cust) SELECT x.o_cust, x.n, y.n FROM t x JOIN t y ON x.o_cust = y.o_cust - 1 ORDER BY 1;

-- id: cte_recursive_counter
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n FROM r ORDER BY n;

-- id: cte_recursive_sum
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100) SELECT sum(n), count(*) FROM r;

-- id: cte_recursive_fibonacci
WITH RECURSIVE f(i, a, b) AS (SELECT 1, 0::bigint, 1::bigint UNION ALL SELECT i + 1, b, a + b FROM f WHERE i < 60) SELECT i, a FROM f ORDER BY i;

-- id: cte_recursive_tree
WITH RECURSIVE t AS (SELECT id, name, 0 AS depth FROM emp WHERE boss IS NULL UNION ALL SELECT e.id, e.name, t.depth + 1 FROM emp e JOIN t ON e.boss = t.id) SELECT id, name, depth FROM t ORDER BY id;

-- id: cte_recursive_path
WITH RECURSIVE t AS (SELECT id, name AS path FROM emp WHERE boss IS NULL UNION ALL SELECT e.id, t.path || '/' || e.name FROM emp e JOIN t ON e.boss = t.id) SELECT id, path FROM t ORDER BY id;

-- id: cte_recursive_union_dedup
WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT (n % 5) + 1 FROM r) SELECT n FROM r ORDER BY n;

-- id: cte_recursive_dates
WITH RECURSIVE d(x) AS (SELECT DATE '2024-02-26' UNION ALL SELECT x + 1 FROM d WHERE x < DATE '2024-03-02') SELECT x FROM d ORDER BY x;

-- id: cte_shadows_table
WITH orders AS (SELECT 1 AS o_id) SELECT o_id FROM orders;

-- ===== window functions =====

-- id: win_row_number
SELECT o_id, row_number() OVER (ORDER BY o_total DESC, o_id) FROM orders ORDER BY o_id;

-- id: win_row_number_partition
SELECT o_id, o_status, row_number() OVER (PARTITION BY o_status ORDER BY o_id) FROM orders ORDER BY o_id;

-- id: win_rank_dense_rank
SELECT o_id, o_priority, rank() OVER (ORDER BY o_priority), dense_rank() OVER (ORDER BY o_priority) FROM orders ORDER BY o_id;

-- id: win_percent_rank_cume_dist
SELECT o_id, percent_rank() OVER (ORDER BY o_priority), cume_dist() OVER (ORDER BY o_priority) FROM orders ORDER BY o_id;

-- id: win_lag_lead
SELECT o_id, lag(o_total) OVER (ORDER BY o_id), lead(o_total, 2) OVER (ORDER BY o_id) FROM orders ORDER BY o_id;

-- id: win_lag_default
SELECT o_id, lag(o_id, 1, -1) OVER (ORDER BY o_id) FROM orders ORDER BY o_id LIMIT 3;

-- id: win_running_sum
SELECT o_id, sum(o_total) OVER (ORDER BY o_id) FROM orders ORDER BY o_id;

-- id: win_partition_sum
SELECT o_id, sum(o_total) OVER (PARTITION BY o_status) FROM orders ORDER BY o_id;

-- id: win_rows_frame
SELECT o_id, sum(o_id) OVER (ORDER BY o_id ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING) FROM orders ORDER BY o_id;

-- id: win_default_range_with_peers
SELECT o_id, o_priority, sum(o_id) OVER (ORDER BY o_priority) FROM orders ORDER BY o_id;

-- id: win_range_interval
SELECT o_id, count(*) OVER (ORDER BY o_date RANGE BETWEEN INTERVAL '30 days' PRECEDING AND CURRENT ROW) FROM orders ORDER BY o_id;

-- id: win_range_numeric_offset
SELECT o_id, sum(o_id) OVER (ORDER BY o_id RANGE BETWEEN 3 PRECEDING AND 3 FOLLOWING) FROM orders ORDER BY o_id;

-- id: win_groups_frame
SELECT o_id, count(*) OVER (ORDER BY o_priority GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM orders ORDER BY o_id;

-- id: win_ntile
SELECT o_id, ntile(4) OVER (ORDER BY o_id) FROM orders ORDER BY o_id;

-- id: win_first_last_value
SELECT o_id, first_value(o_id) OVER w, last_value(o_id) OVER w FROM orders WINDOW w AS (PARTITION BY o_status ORDER BY o_id) ORDER BY o_id;

-- id: win_last_value_full_frame
SELECT o_id, last_value(o_id) OVER (PARTITION BY o_status ORDER BY o_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM orders ORDER BY o_id;

-- id: win_nth_value
SELECT o_id, nth_value(o_id, 2) OVER (PARTITION BY o_status ORDER BY o_id) FROM orders ORDER BY o_id;

-- id: win_moving_avg
SELECT o_id, avg(o_total) OVER (ORDER BY o_id ROWS 2 PRECEDING) FROM orders ORDER BY o_id;

-- id: win_count_partition
SELECT o_id, count(*) OVER (PARTITION BY o_cust) FROM orders ORDER BY o_id;

-- id: win_min_max_partition
SELECT o_id, min(o_total) OVER (PARTITION BY o_status), max(o_date) OVER (PARTITION BY o_status) FROM orders ORDER BY o_id;

-- id: win_rank_nulls
SELECT id, big, rank() OVER (ORDER BY big DESC) FROM kinds ORDER BY id;

-- id: win_top_n_per_group
SELECT * FROM (SELECT o_id, o_status, row_number() OVER (PARTITION BY o_status ORDER BY o_total DESC, o_id) AS rn FROM orders) s WHERE rn <= 2 ORDER BY o_status, rn;

-- id: win_empty_over
SELECT o_id, count(*) OVER () FROM orders WHERE o_id < 4 ORDER BY o_id;

-- id: win_over_aggregate
SELECT o_status, count(*), sum(count(*)) OVER () FROM orders GROUP BY o_status ORDER BY 1;

-- id: win_frame_exclude
SELECT o_id, sum(o_id) OVER (ORDER BY o_id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE CURRENT ROW) FROM orders WHERE o_id <= 5 ORDER BY o_id;

-- id: win_lead_partition_default
SELECT l_order, l_line, lead(l_qty, 1, 0) OVER (PARTITION BY l_order ORDER BY l_line) FROM lineitem WHERE l_order <= 6 ORDER BY 1, 2;

-- id: win_cumulative_float
SELECT l_order, l_line, sum(l_discount) OVER (ORDER BY l_order, l_line) FROM lineitem WHERE l_order <= 6 ORDER BY 1, 2;

-- ===== CASE / COALESCE / NULLIF / GREATEST / LEAST =====

-- id: case_simple_form
SELECT id, CASE flag WHEN true THEN 'yes' WHEN false THEN 'no' ELSE 'unknown' END FROM kinds ORDER BY id;

-- id: case_searched
SELECT o_id, CASE WHEN o_total > 500 THEN 'big' WHEN o_total > 100 THEN 'mid' END FROM orders WHERE o_id <= 12 ORDER BY o_id;

-- id: case_int_and_numeric
SELECT CASE WHEN true THEN 1 ELSE 2.5 END;

-- id: case_without_else
SELECT CASE WHEN false THEN 1 END;

-- id: case_guards_division
SELECT CASE WHEN 0 = 0 THEN 0 ELSE 1 / 0 END;

-- id: case_in_aggregate
SELECT sum(CASE WHEN l_returned THEN l_qty ELSE 0 END), count(CASE WHEN l_returned THEN 1 END) FROM lineitem;

-- id: coalesce_columns
SELECT id, coalesce(txt, vc, 'none') FROM kinds ORDER BY id;

-- id: coalesce_mixed_types
SELECT coalesce(NULL, 1, 2.5);

-- id: coalesce_smallint_bigint
SELECT id, coalesce(small, big) FROM kinds ORDER BY id;

-- id: nullif_values
SELECT nullif(1, 1), nullif(1, 2), nullif('a', 'b');

-- id: greatest_least
SELECT greatest(1, 5, 3), least(1, 5, 3), greatest(1, NULL, 3), least('b', 'a');

-- id: greatest_least_mixed_types
SELECT greatest(1, 2.5), least(1.5::float8, 2);

-- id: greatest_least_columns
SELECT id, greatest(small, id), least(num, 0) FROM kinds ORDER BY id;

-- ===== NULL semantics =====

-- id: null_comparisons
SELECT NULL = NULL, NULL <> 1, NULL IS NULL, NULL IS NOT NULL;

-- id: null_is_distinct_from
SELECT NULL IS DISTINCT FROM NULL, 1 IS DISTINCT FROM NULL, 1 IS NOT DISTINCT FROM 1;

-- id: null_three_valued_logic
SELECT NULL AND false, NULL AND true, NULL OR true, NULL OR false, NOT NULL::boolean;

-- id: null_logic_on_columns
SELECT id, flag AND true, flag OR false, NOT flag FROM kinds ORDER BY id;

-- id: null_arithmetic_and_concat
SELECT NULL + 1, NULL || 'a', 'a' || NULL;

-- id: null_concat_functions
SELECT concat('a', NULL, 'b'), concat_ws(',', 'a', NULL, 'b');

-- id: null_where_or
SELECT id FROM kinds WHERE big > 0 OR big IS NULL ORDER BY id;

-- id: null_distinct_from_filter
SELECT count(*) FROM kinds WHERE big IS DISTINCT FROM 0;

-- id: null_is_true_unknown
SELECT id, flag IS TRUE, flag IS NOT FALSE, flag IS UNKNOWN FROM kinds ORDER BY id;

-- id: null_only_aggregates
SELECT sum(x), count(x), avg(x) FROM (VALUES (NULL::int), (NULL)) t(x);

-- id: null_row_min_max
SELECT max(txt), min(vc) FROM kinds WHERE id = 4;

-- ===== string functions =====

-- id: str_length
SELECT id, length(txt), char_length(txt), octet_length(txt) FROM kinds ORDER BY id;

-- id: str_upper_lower
SELECT id, upper(txt), lower(vc) FROM kinds ORDER BY id;

-- id: str_substring_forms
SELECT substring('hello world' from 7), substring('hello world' from 1 for 5), substr('hello', 2, 3);

-- id: str_substring_out_of_range
SELECT substring('hello' from -1 for 3), substr('hello', 0), substr('hello', 10);

-- id: str_substring_unicode
SELECT substring(txt, 2, 4) FROM kinds WHERE id = 3;

-- id: str_position
SELECT position('lo' in 'hello'), position('z' in 'hello'), strpos('hello', 'l');

-- id: str_replace
SELECT replace('banana', 'an', 'AN'), replace('abc', '', 'x');

-- id: str_trim
SELECT trim('  x  '), ltrim('xxhixx', 'x'), rtrim('xxhixx', 'x'), btrim('  y '), trim(both 'x' from 'xxaxx'), trim(leading from '  a');

-- id: str_split_part
SELECT split_part('a,b,c', ',', 2), split_part('a,b,c', ',', 5), split_part('a,b,c', ',', -1);

-- id: str_concat_mixed
SELECT concat('a', 1, true, 2.5), 'a' || 1, 1 || 'a';

-- id: str_concat_columns
SELECT id, txt || '-' || vc FROM kinds ORDER BY id;

-- id: str_lpad_rpad
SELECT lpad('7', 3, '0'), rpad('ab', 5, 'xy'), lpad('hello', 3), rpad('', 2);

-- id: str_like
SELECT id, txt LIKE 'h%', txt LIKE '%o%', vc NOT LIKE 'a%' FROM kinds ORDER BY id;

-- id: str_like_escape
SELECT 'a%b' LIKE 'a\%b', 'axb' LIKE 'a\%b', '50%' LIKE '50!%' ESCAPE '!';

-- id: str_like_underscore
SELECT id FROM kinds WHERE txt LIKE 'a_b%' ORDER BY id;

-- id: str_ilike
SELECT id, txt ILIKE 'HELLO%', vc NOT ILIKE '%B%' FROM kinds ORDER BY id;

-- id: str_similar_to
SELECT 'abc' SIMILAR TO 'a(b|c)c', 'abd' SIMILAR TO '%(b|d)', 'abc' SIMILAR TO 'a';

-- id: str_regexp_replace
SELECT regexp_replace('hello world', 'o', '0'), regexp_replace('hello world', 'o', '0', 'g'), regexp_replace('abc123', '[0-9]+', '#');

-- id: str_regexp_backreference
SELECT regexp_replace('john smith', '(\w+) (\w+)', '\2, \1');

-- id: str_regexp_operators
SELECT 'abc' ~ 'b', 'abc' ~* 'B', 'abc' !~ 'z', 'abc' !~* 'A';

-- id: str_left_right
SELECT left('hello', 2), right('hello', 2), left('hello', -2), right('hello', -2);

-- id: str_repeat
SELECT repeat('ab', 3), repeat('x', 0), repeat('x', -1);

-- id: str_reverse
SELECT reverse('hello'), reverse('Ünï');

-- id: str_initcap
SELECT initcap('hello wORLD foo-bar'), initcap('élan vital');

-- id: str_md5
SELECT md5('hello'), md5('');

-- id: str_md5_columns
SELECT id, md5(txt) FROM kinds ORDER BY id;

-- id: str_ascii_chr
SELECT ascii('A'), chr(65), chr(8364);

-- id: str_translate
SELECT translate('12345', '143', 'ax');

-- id: str_starts_with
SELECT starts_with('hello', 'he'), starts_with('hello', 'lo');

-- id: str_to_hex
SELECT to_hex(255), to_hex(-1);

-- id: str_format
SELECT format('%s-%s', 'a', 1);

-- id: str_quote_functions
SELECT quote_ident('a b'), quote_literal('it''s');

-- id: str_unicode_lengths
SELECT length('日本語'), octet_length('日本語'), upper('straße'), lower('ÀÉÎ');

-- id: str_comparisons
SELECT 'a' < 'b', 'B' < 'a', 'abc' = 'abc ', 'é' > 'z';

-- id: str_varchar_equals_text
SELECT id FROM kinds WHERE vc = 'abc' ORDER BY id;

-- id: str_lower_equality
SELECT id FROM kinds WHERE lower(txt) = lower(vc) ORDER BY id;

-- id: str_string_to_array
SELECT string_to_array('a,b,,c', ',');

-- id: str_encode
SELECT encode('hello'::bytea, 'hex'), encode('\x0001ff'::bytea, 'base64');

-- id: str_bytea_columns
SELECT id, raw, length(raw) FROM kinds ORDER BY id;

-- id: str_overlay
SELECT overlay('Txxxxas' placing 'hom' from 2 for 4);

-- id: str_group_by_upper
SELECT upper(l_part), count(*) FROM lineitem GROUP BY 1 ORDER BY 1;

-- id: str_regexp_like_filter
SELECT count(*) FROM lineitem WHERE l_part ~ '^part-[ACE]$';

-- id: str_format_columns
SELECT c_id, format('%s|%I|%L|%5s|%-3s|', c_name, c_region, c_name, c_id, c_region) FROM customers ORDER BY c_id;

-- id: str_format_positions_and_nulls
SELECT format('%2$s %1$s %%', 'a', 'b'), format('[%s][%L]', NULL, NULL), format('%s %s %s', true, 2.50, DATE '2024-02-29');

-- id: str_quote_ident_keywords
SELECT quote_ident('default'), quote_ident('Abc'), quote_ident('clicks'), quote_ident('a b'), quote_ident('user'), quote_ident('1st');

-- id: str_varchar_columns
SELECT id, vc, length(vc), vc || '!' FROM kinds ORDER BY id;

-- ===== date and time =====

-- id: dt_date_trunc_timestamp
SELECT date_trunc('month', TIMESTAMP '2024-02-29 12:34:56'), date_trunc('hour', TIMESTAMP '2024-02-29 12:34:56');

-- id: dt_date_trunc_timestamptz
SELECT date_trunc('day', TIMESTAMPTZ '2024-02-29 12:34:56+05');

-- id: dt_date_trunc_week_quarter
SELECT date_trunc('week', DATE '2024-02-29'), date_trunc('quarter', TIMESTAMP '2024-08-15 00:00:00');

-- id: dt_date_trunc_column
SELECT id, date_trunc('year', ts) FROM kinds ORDER BY id;

-- id: dt_extract_fields
SELECT extract(year FROM DATE '2024-02-29'), extract(month FROM TIMESTAMP '2024-02-29 12:34:56.789'), extract(second FROM TIMESTAMP '2024-02-29 12:34:56.789');

-- id: dt_extract_dow_doy_week
SELECT extract(dow FROM DATE '2024-02-29'), extract(doy FROM DATE '2024-12-31'), extract(isodow FROM DATE '2024-03-03'), extract(week FROM DATE '2024-01-01');

-- id: dt_extract_epoch
SELECT extract(epoch FROM TIMESTAMP '2024-01-01 00:00:00'), extract(epoch FROM TIMESTAMPTZ '1970-01-01 00:00:01.5+00');

-- id: dt_date_part
SELECT date_part('year', DATE '2024-02-29'), date_part('hour', TIMESTAMP '2024-01-01 13:00:00');

-- id: dt_extract_columns
SELECT id, extract(year FROM d), extract(quarter FROM d) FROM kinds ORDER BY id;

-- id: dt_extract_epoch_column
SELECT id, extract(epoch FROM ts) FROM kinds ORDER BY id;

-- id: dt_date_plus_minus_int
SELECT DATE '2024-02-28' + 1, DATE '2024-03-01' - 1, DATE '2023-02-28' + 1;

-- id: dt_date_minus_date
SELECT DATE '2024-03-01' - DATE '2024-02-01';

-- id: dt_date_plus_interval
SELECT DATE '2024-01-31' + INTERVAL '1 month';

-- id: dt_timestamp_plus_interval
SELECT TIMESTAMP '2024-01-31 10:00:00' + INTERVAL '1 month 2 hours', TIMESTAMP '2024-03-10 01:00:00' - INTERVAL '90 minutes';

-- id: dt_timestamp_minus_timestamp
SELECT TIMESTAMP '2024-03-01 00:00:00' - TIMESTAMP '2024-02-28 12:00:00';

-- id: dt_interval_arithmetic
SELECT INTERVAL '1 day' * 3, INTERVAL '1 hour' / 2, INTERVAL '1 day' + INTERVAL '2 hours', - INTERVAL '1 month';

-- id: dt_interval_literals
SELECT INTERVAL '1 year 2 months 3 days', INTERVAL '90 minutes', INTERVAL '1.5 seconds';

-- id: dt_interval_comparison
SELECT INTERVAL '1 day' = INTERVAL '24 hours', INTERVAL '1 month' > INTERVAL '29 days';

-- id: dt_to_char_date
SELECT to_char(DATE '2024-02-29', 'YYYY-MM-DD'), to_char(DATE '2024-02-29', 'DD Mon YYYY'), to_char(DATE '2024-02-29', 'Day');

-- id: dt_to_char_timestamp
SELECT to_char(TIMESTAMP '2024-02-29 13:04:05.678', 'HH24:MI:SS.MS'), to_char(TIMESTAMP '2024-02-29 13:04:05', 'HH12 AM');

-- id: dt_to_char_number
SELECT to_char(1234.5, '9999.99'), to_char(42, '000');

-- id: dt_age
SELECT age(TIMESTAMP '2024-03-01', TIMESTAMP '2023-01-15'), age(DATE '2024-02-29', DATE '2020-02-29');

-- id: dt_make_date
SELECT make_date(2024, 2, 29);

-- id: dt_make_date_invalid
SELECT make_date(2023, 2, 29);

-- id: dt_make_timestamp
SELECT make_timestamp(2024, 1, 2, 3, 4, 5.5);

-- id: dt_to_date_to_timestamp
SELECT to_date('2024-02-29', 'YYYY-MM-DD'), to_timestamp('2024-02-29 10:00', 'YYYY-MM-DD HH24:MI');

-- id: dt_to_timestamp_epoch
SELECT to_timestamp(0), to_timestamp(1700000000.5);

-- id: dt_date_timestamp_comparison
SELECT DATE '2024-01-01' < TIMESTAMP '2024-01-01 00:00:01', DATE '2024-01-01' = TIMESTAMP '2024-01-01';

-- id: dt_cast_timestamp_date
SELECT TIMESTAMP '2024-02-29 23:59:59'::date, DATE '2024-02-29'::timestamp;

-- id: dt_cast_timestamptz_timestamp
SELECT TIMESTAMPTZ '2024-02-29 23:00:00-05'::timestamp;

-- id: dt_at_time_zone
SELECT TIMESTAMP '2024-01-01 12:00:00' AT TIME ZONE 'America/New_York', TIMESTAMPTZ '2024-01-01 12:00:00+00' AT TIME ZONE 'Asia/Tokyo';

-- id: dt_timestamp_to_text
SELECT TIMESTAMP '2024-01-01 00:00:00'::text, TIMESTAMPTZ '2024-01-01 00:00:00+00'::text;

-- id: dt_columns
SELECT id, d, ts, tstz FROM kinds ORDER BY id;

-- id: dt_filter_date_between
SELECT count(*) FROM orders WHERE o_date BETWEEN DATE '2023-03-01' AND DATE '2023-06-30';

-- id: dt_filter_timestamp_against_string
SELECT count(*) FROM lineitem WHERE l_ship >= '2023-06-01';

-- id: dt_group_year_month
SELECT extract(year FROM l_ship), extract(month FROM l_ship), count(*) FROM lineitem GROUP BY 1, 2 ORDER BY 1, 2;

-- id: dt_date_column_arithmetic
SELECT o_id, o_date + 30, o_date + INTERVAL '1 day', o_date - DATE '2023-01-01' FROM orders WHERE o_id <= 5 ORDER BY o_id;

-- id: dt_timestamp_column_difference
SELECT l_order, l_line, l_ship - o.o_date::timestamp FROM lineitem JOIN orders o ON o.o_id = l_order WHERE l_order <= 3 ORDER BY 1, 2;

-- id: dt_justify
SELECT justify_hours(INTERVAL '27 hours'), justify_days(INTERVAL '35 days');

-- id: dt_infinity_date
SELECT 'infinity'::date;

-- id: dt_century_millennium
SELECT extract(century FROM DATE '2000-01-01'), extract(millennium FROM DATE '2001-01-01');

-- id: dt_timestamptz_column_single
SELECT tstz FROM kinds WHERE id = 3;

-- id: dt_date_trunc_on_date_column
SELECT o_id, date_trunc('month', o_date) FROM orders WHERE o_id <= 5 ORDER BY o_id;

-- id: dt_timestamp_compare_column
SELECT count(*) FROM kinds WHERE ts < TIMESTAMP '2000-01-01 00:00:00';

-- id: dt_interval_extract
SELECT extract(day FROM INTERVAL '3 days 4 hours'), extract(epoch FROM INTERVAL '1 hour');

-- ===== generate_series =====

-- id: gen_series_from
SELECT * FROM generate_series(1, 5) ORDER BY 1;

-- id: gen_series_step_down
SELECT g FROM generate_series(10, 1, -3) AS g ORDER BY g;

-- id: gen_series_sum
SELECT sum(g), count(*) FROM generate_series(1, 1000) g;

-- id: gen_series_numeric
SELECT g FROM generate_series(0.5, 2.0, 0.5) g ORDER BY g;

-- id: gen_series_timestamps
SELECT g FROM generate_series(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-03', INTERVAL '12 hours') g ORDER BY g;

-- id: gen_series_dates_cast
SELECT g::date FROM generate_series(DATE '2024-02-27', DATE '2024-03-02', INTERVAL '1 day') g ORDER BY 1;

-- id: gen_series_select_list
SELECT generate_series(1, 3) AS g ORDER BY 1;

-- id: gen_series_left_join
SELECT g, count(o_id) FROM generate_series(1, 6) g LEFT JOIN orders ON o_priority = g GROUP BY g ORDER BY g;

-- id: gen_series_empty
SELECT count(*) FROM generate_series(5, 1);

-- id: gen_series_bigint
SELECT g FROM generate_series(9223372036854775805, 9223372036854775807) g ORDER BY g;

-- ===== VALUES =====

-- id: values_top_level
VALUES (1, 'a'), (2, 'b') ORDER BY 1;

-- id: values_int_and_numeric
VALUES (1, 1.5), (2, 2) ORDER BY 1;

-- id: values_with_nulls
SELECT * FROM (VALUES (1, NULL), (2, 'x')) v(a, b) ORDER BY a;

-- id: values_aggregate
SELECT sum(a), max(b) FROM (VALUES (1, 'x'), (2, 'y'), (3, 'z')) v(a, b);

-- id: values_int_and_bigint
SELECT * FROM (VALUES (1), (3000000000)) v(a) ORDER BY a;

-- id: values_dates
SELECT * FROM (VALUES (DATE '2024-01-01'), (DATE '2023-01-01')) v(d) ORDER BY d;

-- id: values_join_table
SELECT v.s, count(o.o_id) FROM (VALUES ('F'), ('O'), ('X')) v(s) LEFT JOIN orders o ON o.o_status = v.s GROUP BY v.s ORDER BY 1;

-- ===== whole tables and miscellany =====

-- id: misc_select_star_kinds
SELECT * FROM kinds ORDER BY id;

-- id: misc_select_star_customers
SELECT * FROM customers ORDER BY c_id;

-- id: misc_select_star_orders
SELECT * FROM orders ORDER BY o_id;

-- id: misc_select_star_lineitem
SELECT * FROM lineitem ORDER BY l_order, l_line;

-- id: misc_select_star_emp
SELECT * FROM emp ORDER BY id;

-- id: misc_count_lineitem
SELECT count(*), count(l_qty), count(DISTINCT l_order) FROM lineitem;

-- id: misc_in_list
SELECT o_id FROM orders WHERE o_status IN ('F', 'P') AND o_id < 10 ORDER BY 1;

-- id: misc_between
SELECT o_id FROM orders WHERE o_total BETWEEN 100 AND 300 ORDER BY 1;

-- id: misc_not_between
SELECT count(*) FROM orders WHERE o_total NOT BETWEEN 100 AND 900;

-- id: misc_between_symmetric
SELECT 5 BETWEEN SYMMETRIC 10 AND 1, 5 BETWEEN 10 AND 1;

-- id: misc_quoted_alias
SELECT 1 AS "Mixed Case", 2 AS lower;

-- id: misc_boolean_filter
SELECT id FROM kinds WHERE flag ORDER BY id;

-- id: misc_not_boolean_filter
SELECT id FROM kinds WHERE NOT flag ORDER BY id;

-- id: misc_array_literals
SELECT ARRAY[1, 2, 3], ARRAY['a', NULL];

-- id: misc_array_subscript_length
SELECT (ARRAY[10, 20, 30])[2], array_length(ARRAY[1, 2, 3], 1), cardinality(ARRAY[1, 2]);

-- id: misc_unnest
SELECT unnest(ARRAY[3, 1, 2]) AS u ORDER BY u;

-- id: misc_array_contains
SELECT ARRAY[1, 2, 3] @> ARRAY[2], 2 = ANY (ARRAY[1, 2]);

-- id: misc_row_comparison
SELECT (1, 2) < (1, 3), (1, NULL) = (1, 2);

-- id: misc_where_true_no_from
SELECT 1 + 1 AS two WHERE true;

-- id: misc_where_false_no_from
SELECT 1 WHERE false;

-- id: misc_numeric_vs_string_literal
SELECT id FROM kinds WHERE num > '100' ORDER BY id;

-- id: misc_numeric_display
SELECT id, num, num::text, num::float8 FROM kinds ORDER BY id;

-- id: misc_float_display
SELECT id, dbl, rl, dbl::text FROM kinds ORDER BY id;

-- id: misc_float_literal_display
SELECT 1e16::float8, 1.5e-7::float8, 123456.789::float8, 1e100::float8, 5e-324::float8;

-- id: misc_real_display
SELECT 0.1::real, 1e10::real, 3.4e38::real, 1.17549435e-38::real;

-- id: misc_bigint_extremes
SELECT id, big, -big FROM kinds WHERE id <> 2 ORDER BY id;

-- id: misc_smallint_widening
SELECT id, small, small::int, small::bigint FROM kinds ORDER BY id;

-- id: misc_case_insensitive_identifiers
SELECT ID, Big FROM KINDS WHERE id = 1;

-- id: misc_quoted_identifiers
SELECT "id", "txt" FROM "kinds" WHERE "id" = 1;

-- id: misc_numeric_text_cast_column
SELECT o_id, o_total::text FROM orders WHERE o_id <= 5 ORDER BY o_id;

-- id: misc_count_star_filters
SELECT count(*) FROM lineitem WHERE l_returned AND l_qty > 10;

-- id: misc_select_expression_only_columns
SELECT id * 2, txt IS NULL FROM kinds ORDER BY 1;

-- id: misc_nested_subquery_alias
SELECT t.total FROM (SELECT sum(l_qty) AS total FROM (SELECT l_qty FROM lineitem WHERE l_part = 'part-A') a) t;

-- id: misc_order_by_not_selected
SELECT o_status FROM orders WHERE o_id <= 6 ORDER BY o_id;

-- id: misc_bytea_comparison
SELECT id FROM kinds WHERE raw = '\x00'::bytea ORDER BY id;

-- id: misc_limit_all
SELECT c_id FROM customers ORDER BY c_id LIMIT ALL;

-- id: misc_text_cast_of_numeric_aggregate
SELECT sum(o_total)::text, avg(o_priority)::text FROM orders;

-- ===== catalog as drivers read it =====

-- id: cat_regproc_join
SELECT t.typname::text, p.proname::text FROM pg_catalog.pg_type t JOIN pg_catalog.pg_proc p ON p.oid = t.typreceive WHERE t.typname IN ('int4', '_int4', 'bool', 'text') ORDER BY 1;

-- id: cat_regproc_filter
SELECT typname::text, typreceive::text, typsend::text FROM pg_catalog.pg_type WHERE (typreceive != 0 OR typsend != 0) AND typname IN ('int8', 'numeric', 'timestamptz') ORDER BY 1;

-- id: cat_type_namespace
SELECT n.nspname::text, t.typname::text FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.typname IN ('int8', 'text') ORDER BY 2;

-- id: cat_system_namespaces
SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1;

-- id: sub_scalar_correlated_not_aggregated
SELECT c_id, (SELECT c2.c_name FROM customers c2 WHERE c2.c_id = c.c_id) AS same FROM customers c ORDER BY c_id;

-- id: sub_scalar_correlated_unnamed
SELECT e.id, (SELECT b.name FROM emp b WHERE b.id = e.boss) FROM emp e ORDER BY 1;

-- id: sub_scalar_correlated_more_than_one_row
SELECT c_id, (SELECT o.o_id FROM orders o WHERE o.o_cust = c.c_id) AS o FROM customers c ORDER BY c_id;

-- id: sub_scalar_correlated_one_row_where_evaluated
SELECT c_id, (SELECT o.o_id FROM orders o WHERE o.o_cust = c.c_id) AS o FROM customers c WHERE c_id = 10;

-- id: sub_scalar_correlated_first_row
SELECT c_id, (SELECT o.o_id FROM orders o WHERE o.o_cust = c.c_id ORDER BY o.o_total DESC, o.o_id LIMIT 1) AS top FROM customers c ORDER BY c_id;

-- id: sub_scalar_correlated_first_row_by_alias
SELECT c_id, (SELECT o.o_id * 10 AS k FROM orders o WHERE o.o_cust = c.c_id ORDER BY k LIMIT 1) AS top FROM customers c ORDER BY c_id;

-- id: sub_scalar_correlated_count_limit
SELECT c_id, (SELECT count(1) FROM orders o WHERE o.o_cust = c.c_id LIMIT 1) AS n FROM customers c ORDER BY c_id;

-- id: sub_scalar_correlated_in_where
SELECT e.id FROM emp e WHERE (SELECT b.name FROM emp b WHERE b.id = e.boss) = 'ann' ORDER BY 1;

-- id: sub_scalar_correlated_in_case
SELECT e.id, CASE WHEN e.boss = 2 THEN (SELECT b.name FROM emp b WHERE b.id = e.boss) ELSE 'other' END AS boss FROM emp e ORDER BY 1;

-- id: sub_not_exists_in_select_list
SELECT c.c_id, NOT EXISTS (SELECT 1 FROM orders o WHERE o.o_cust = c.c_id AND o.o_total > 500) AS none_big FROM customers c ORDER BY 1;

-- id: sub_exists_uncorrelated_in_select_list
SELECT EXISTS (SELECT 1 FROM orders WHERE o_total > 500) AS some, EXISTS (SELECT 1 FROM orders WHERE o_total < 0) AS none;

-- id: array_literal_quoted_and_null_elements
SELECT '{a,"b,c", NULL ,"null","q\"x"}'::text[] AS words, cardinality('{1, 2 ,3}'::int[]) AS n;

-- id: array_literal_all_with_quoted_element
SELECT word FROM (VALUES ('null'), ('abort'), ('a')) v(word) WHERE word <> ALL ('{a,"null"}'::text[]);

-- id: sub_in_select_list_three_valued
SELECT x, x IN (SELECT id FROM emp WHERE boss IS NULL) AS root, x IN (SELECT boss FROM emp) AS is_boss, x NOT IN (SELECT boss FROM emp) AS not_boss, x IN (SELECT id FROM emp WHERE false) AS never FROM bag_a ORDER BY 1 NULLS LAST, 2;

-- id: sub_in_order_by
SELECT c_id FROM customers ORDER BY CASE WHEN c_id IN (SELECT o_cust FROM orders WHERE o_total > 500) THEN 0 ELSE 1 END, c_id;

-- id: cat_server_major
SELECT current_setting('server_version_num')::int / 10000;

-- id: cat_regproc_columns
SELECT typname::text, typreceive, typsend, typmodin FROM pg_catalog.pg_type WHERE typname IN ('int8', 'bool', 'numeric') ORDER BY 1;
