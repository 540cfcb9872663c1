import { touchpointJsonSchema } from '@touchstream/contracts';
import { applyPropertyColumns, applyRetention, createStore, migrate } from '@touchstream/store';
import { Command } from 'commander';
import { registerDemoCommand } from './demo-command.js';
import { registerEraseCommand } from './erase-command.js';
import { registerFunnelCommand } from './funnel-command.js';
import { registerReviewCommand } from './review-command.js';
import { registerSimulateCommand } from './simulate.js';
import { configOrExit, registerStartCommand } from './start-command.js';

const program = new Command('touchstream')
  .description(
    'Customer-journey analytics: funnels, drop-off at every point of disconnection, alerts.',
  )
  .showHelpAfterError('(touchstream help <command> shows its options)');

registerStartCommand(program);

program
  .command('migrate')
  .description(
    'apply the ClickHouse schema, TOUCHSTREAM_RETENTION and TOUCHSTREAM_PROPERTY_COLUMNS (start does it too)',
  )
  .action(async () => {
    const config = configOrExit();
    const store = await createStore(config);
    const applied = await migrate(store);
    const retention = await applyRetention(store, config.retentionMs);
    const columns = await applyPropertyColumns(store, config.propertyColumns);
    await store.close();
    process.stdout.write(
      applied.length === 0
        ? 'schema is up to date\n'
        : `applied ${applied.map((m) => `${m.version} ${m.name}`).join(', ')}\n`,
    );
    for (const { table, ttl } of retention) {
      process.stdout.write(
        `retention of ${table}: ${ttl === null ? 'none (kept forever)' : `TTL ${ttl}`}\n`,
      );
    }
    for (const name of columns) process.stdout.write(`property column added: ${name}\n`);
  });

program
  .command('schema')
  .description('print the JSON Schema of a touchpoint event, for producer services')
  .action(() => {
    process.stdout.write(`${JSON.stringify(touchpointJsonSchema(), null, 2)}\n`);
  });

registerFunnelCommand(program);
registerReviewCommand(program);
registerEraseCommand(program);
registerSimulateCommand(program);
registerDemoCommand(program);

await program.parseAsync(process.argv);
