// What control-plane/src/testing/global-setup.ts provides to every integration test file.
import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
    redisUrl: string;
    natsUrl: string;
    templateDatabase: string;
    testDatabasePrefix: string;
  }
}
