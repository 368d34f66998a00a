import { describe, expect, it } from 'vitest';
import { MysqlDumpCounter, mysqlText, nonTransactionalTables } from './row-counts';

/** A mysqldump as MariaDB 10.11 writes it (one row per line), with the awkward parts a counter can trip on. */
const MARIADB_DUMP = `/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB
/*!40101 SET NAMES utf8mb4 */;
DROP TABLE IF EXISTS \`daily\`;
/*!50001 CREATE VIEW \`daily\` AS SELECT
 NULL AS \`machine_id\` */;
CREATE TABLE \`deposits\` (
  \`id\` bigint(20) NOT NULL,
  \`note\` text DEFAULT NULL COMMENT 'free text; (optional)',
  PRIMARY KEY (\`id\`)
) ENGINE=InnoDB;
LOCK TABLES \`deposits\` WRITE;
INSERT INTO \`deposits\` VALUES
(1,'it\\'s; (a) \\"note\\"\\\\ x'),
(2,NULL),
(3,'(((;'),
(4,'two '' quotes ) ;');
UNLOCK TABLES;
CREATE TABLE \`empty\` (\`x\` int);
CREATE TABLE \`we\`\`ird\` (\`x\` int);
INSERT INTO \`we\`\`ird\` VALUES (1),(2),(3);
CREATE TABLE \`caf\u00e9\` (\`x\` int);
INSERT INTO \`caf\u00e9\` VALUES (1);
DELIMITER ;;
/*!50003 CREATE*/ /*!50003 TRIGGER t AFTER INSERT ON deposits FOR EACH ROW
INSERT INTO \`audit\` VALUES (NEW.id) */;;
DELIMITER ;
INSERT INTO \`deposits\` VALUES (5,'x'),(6,_binary 'b\\0(');
-- Dump completed
`;

/** MySQL's mysqldump: every row of a table on one line. */
const MYSQL_DUMP = "CREATE TABLE `t` (`a` int, `b` varchar(9));\nINSERT INTO `t` VALUES (1,'a'),(2,'(b)'),(3,'c\\'');\nINSERT INTO `t` VALUES (4,'d');\n";

function count(text: string, chunk: number): Record<string, number> {
  const counter = new MysqlDumpCounter();
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i += chunk) counter.push(bytes.subarray(i, i + chunk));
  return counter.end();
}

describe('MysqlDumpCounter', () => {
  it('counts the rows of every table, 0 for tables without data, and skips trigger bodies', () => {
    expect(count(MARIADB_DUMP, 1 << 16)).toEqual({ deposits: 6, empty: 0, 'we`ird': 3, café: 1 });
    expect(count(MYSQL_DUMP, 1 << 16)).toEqual({ t: 4 });
  });

  it('gives the same counts however the stream is cut into chunks', () => {
    for (const size of [1, 2, 3, 7, 64]) {
      expect(count(MARIADB_DUMP, size)).toEqual({ deposits: 6, empty: 0, 'we`ird': 3, café: 1 });
      expect(count(MYSQL_DUMP, size)).toEqual({ t: 4 });
    }
  });
});

describe('the engines of a dump', () => {
  const DUMP = `CREATE TABLE \`orders\` (
  \`id\` int(11) NOT NULL,
  PRIMARY KEY (\`id\`)
) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=utf8mb4;
CREATE TABLE \`sensor_log\` (
  \`id\` int(11) NOT NULL
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;
INSERT INTO \`sensor_log\` VALUES (1),(2);
CREATE TABLE \`cache\` (
  \`k\` int(11) NOT NULL
) ENGINE=Aria DEFAULT CHARSET=utf8mb4 PAGE_CHECKSUM=1;
CREATE TABLE \`hot\` (\`k\` int) ENGINE=MEMORY;
CREATE TABLE \`more_log\` (
  \`id\` int(11) NOT NULL
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;
`;

  it('are read from the CREATE TABLE statements, however the stream is cut, and the non-transactional ones named by engine', () => {
    for (const size of [1, 5, 1 << 16]) {
      const counter = new MysqlDumpCounter();
      const bytes = Buffer.from(DUMP, 'utf8');
      for (let i = 0; i < bytes.length; i += size) counter.push(bytes.subarray(i, i + size));
      expect(counter.end()).toEqual({ orders: 0, sensor_log: 2, cache: 0, hot: 0, more_log: 0 });
      expect(counter.engines).toEqual({ orders: 'InnoDB', sensor_log: 'MyISAM', cache: 'Aria', hot: 'MEMORY', more_log: 'MyISAM' });
      expect(nonTransactionalTables(counter.engines)).toEqual([
        ['MyISAM', ['sensor_log', 'more_log']],
        ['Aria', ['cache']],
        ['MEMORY', ['hot']],
      ]);
    }
  });
});

describe('mysqlText', () => {
  it('writes any string as a literal without quotes', () => {
    expect(mysqlText("a'b`c\\")).toBe(`CONVERT(0x${Buffer.from("a'b`c\\").toString('hex')} USING utf8mb4)`);
    expect(mysqlText('')).toBe("''");
  });
});
