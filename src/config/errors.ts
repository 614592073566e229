// Its own module so the loader and its TOML helpers (toml.ts) can both throw it without
// importing each other.

/** Everything wrong with a config file; `message` is one human-readable line per problem. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(readonly errors: string[]) {
    super(errors.join('\n'));
  }
}
