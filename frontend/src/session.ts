import { useQuery } from "@tanstack/react-query";
import { api } from "./api/client";

export type Organization = { id: number; name: string; slug: string; role: string };
export type Me = { user: { id: number; email: string; name: string }; organizations: Organization[] };

/** The signed-in user and their organizations; null when signed out. */
export function useMe() {
  return useQuery({
    queryKey: ["me"],
    queryFn: async (): Promise<Me | null> => {
      const { data, response } = await api.GET("/api/v1/auth/me/");
      if (response.status === 401 || response.status === 403) return null;
      return (data as unknown as Me) ?? null;
    },
  });
}

export const BILLING_ROLES = ["owner", "billing"];
export const CLUSTER_WRITERS = ["owner", "admin"];
